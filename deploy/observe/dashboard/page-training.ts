/**
 * The page's training plots, drawn in the browser with uPlot (inlined by the server): loss or
 * margin per step, smoothed (an exponential moving average, debiased as TensorBoard does), with
 * the values under the cursor in the legend, drag-to-zoom and double-click to reset, one panel
 * per member (a line per iteration) or per iteration (a line per member).
 */

/** The training section's controls and panels. */
export const TRAINING_MARKUP = `<form id="t-controls" data-testid="training-controls" class="controls">
<label>show <select id="t-metric"><option value="loss">loss</option><option value="margin">margin</option></select></label>
<label>one panel per <select id="t-by"><option value="member">member</option><option value="iteration">iteration</option></select></label>
<label>smoothing <input id="t-smooth" type="range" min="0" max="0.95" step="0.05" value="0.6"> <output id="t-smooth-v">0.60</output></label>
<span class="muted">hover for values · drag to zoom · double-click to reset</span></form>
<div id="training" data-testid="training" class="panels"></div><div id="training-summary"></div>`;

export const TRAINING_STYLE = `
.panels{display:flex;flex-wrap:wrap;gap:10px}.panel{border:1px solid #eee;border-radius:4px;padding:2px;max-width:100%;overflow:hidden}
.panel .u-title{font-size:13px}.panel .u-legend{font-size:11px}.panel .u-legend .u-series>*{padding:1px 3px}
.controls label{margin-right:.8em}`;

/** The page's script for the plots (uses the page's $, el and the member styles sent with the data). */
export const TRAINING_SCRIPT = String.raw`
const ITERATION_DASHES = [[], [6, 3], [2, 3], [8, 3, 2, 3]];
// Debiased EMA: the first points are not pulled towards 0. Gaps (null) stay gaps.
function smooth(ys, a) {
  let m = 0, n = 0;
  return ys.map((y) => (y === null ? null : (n++, (m = a * m + (1 - a) * y), a ? m / (1 - Math.pow(a, n)) : y)));
}
let trainPlots = [], trainShape = "", trainData = "", lastTraining = null;
function trainingGroups(s, metric, by) {
  const curves = s.training.filter((c) => c.points.some((p) => p[metric] !== undefined));
  const its = [...new Set(curves.map((c) => c.iteration))].sort((a, b) => a - b);
  const groups = new Map();
  for (const c of curves) {
    const k = by === "member" ? c.peer : "iteration " + c.iteration;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push({
      label: by === "member" ? "it " + c.iteration : c.peer,
      stroke: colour(c.peer),
      dash: by === "member" ? ITERATION_DASHES[its.indexOf(c.iteration) % ITERATION_DASHES.length] : memberDash(c.peer),
      points: c.points.filter((p) => p[metric] !== undefined),
    });
  }
  return [...groups].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
}
// One x array for a panel (uPlot's data is aligned): every step any line has, nulls where it has none.
function panelData(lines, metric, a) {
  const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p.step)))].sort((x, y) => x - y);
  return [xs, ...lines.map((l) => {
    const at = new Map(l.points.map((p) => [p.step, p[metric]]));
    return smooth(xs.map((x) => (at.has(x) ? at.get(x) : null)), a);
  })];
}
function markRange(u) {
  const x = u.scales.x;
  if (x.min == null) return;
  u.root.parentElement.dataset.xMin = String(x.min);
  u.root.parentElement.dataset.xMax = String(x.max);
}
// Zoomed in: the x range shows less than the data has, so an update keeps it.
const zoomed = (u) => u.data[0].length > 1 && (u.scales.x.min > u.data[0][0] || u.scales.x.max < u.data[0][u.data[0].length - 1]);
function renderTraining(s, force) {
  lastTraining = s;
  const metric = $("t-metric").value, by = $("t-by").value, a = Number($("t-smooth").value);
  const groups = trainingGroups(s, metric, by);
  const shape = metric + "|" + by + "|" + groups.map(([k, ls]) => k + ":" + ls.map((l) => l.label).join(",")).join(";");
  const data = a + "|" + s.training.map((c) => c.peer + c.iteration + ":" + c.points.length + ":" + (c.points[c.points.length - 1] || {}).step).join(",");
  const done = s.trained.map((t) => el("li", {}, t.peer + ", iteration " + t.iteration + ": " + t.steps + " steps in " + (t.ms / 1000).toFixed(1) + " s, loss " + t.lossFirst.toFixed(3) + " → " + t.lossLast.toFixed(3) + ", margin " + t.marginBefore.toFixed(3) + " → " + t.marginAfter.toFixed(3)));
  $("training-summary").replaceChildren(done.length ? el("ul", { class: "muted" }, ...done) : el("p", { class: "muted" }, s.training.length ? (groups.length ? "" : "training; its backend reports steps without their " + metric) : "no training yet"));
  if (!force && shape === trainShape) {
    if (data === trainData) return;
    trainData = data;
    groups.forEach(([, lines], i) => { const u = trainPlots[i]; u.setData(panelData(lines, metric, a), !zoomed(u)); markRange(u); });
    return;
  }
  trainShape = shape; trainData = data;
  for (const u of trainPlots) u.destroy();
  const box = $("training");
  box.replaceChildren();
  // As many panels of 320 px or more as fit a row, sharing it.
  const room = box.clientWidth || 440, cols = Math.max(1, Math.floor((room + 10) / 330));
  const width = Math.max(260, Math.floor((room - (cols - 1) * 10) / cols) - 6);
  trainPlots = groups.map(([title, lines]) => {
    const div = el("div", { class: "panel", "data-testid": "training-panel", "data-panel": title });
    box.append(div);
    const fmt = (u, v) => (v == null ? "–" : v.toFixed(4));
    const u = new uPlot({
      title, width, height: 190,
      scales: { x: { time: false } },
      axes: [{ label: "step", size: 36 }, { label: metric, size: 56 }],
      series: [{ label: "step", value: (u, v) => (v == null ? "–" : String(v)) }, ...lines.map((l) => ({ label: l.label, stroke: l.stroke, dash: l.dash, width: 1.5, spanGaps: true, points: { show: false }, value: fmt }))],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
      hooks: { setScale: [(u, key) => { if (key === "x") markRange(u); }] },
    }, panelData(lines, metric, a), div);
    markRange(u);
    return u;
  });
  if (!groups.length) box.append(el("p", { class: "muted" }, "no training curves yet"));
}
const redrawTraining = () => { if (lastTraining) renderTraining(lastTraining, true); };
$("t-metric").addEventListener("change", redrawTraining);
$("t-by").addEventListener("change", redrawTraining);
$("t-smooth").addEventListener("input", () => { $("t-smooth-v").textContent = Number($("t-smooth").value).toFixed(2); if (lastTraining) renderTraining(lastTraining, false); });
$("t-controls").addEventListener("submit", (e) => e.preventDefault());
let resizeTimer;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(redrawTraining, 200); });
`;
