/**
 * report.html: one offline file (inline SVG plots and images, no scripts, nothing from the
 * network): the scores per member and suite with the chance level, the table with the change since
 * iteration 0, the run's settings, training curves and example pairs with their images.
 */
import type { ExamplePair, Report, TrainingRow } from "./shape.ts";
import type { CostRow } from "../cost.ts";
import { precisionHtml } from "../precision/format.ts";

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
/** Dash patterns and marker shapes per member, so lines stay apart where they overlap. */
const DASHES = ["", "7 3", "2 3", "9 3 2 3", "4 4"];
const MARKERS = ["circle", "square", "triangle", "diamond"] as const;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const f1 = (x: number) => x.toFixed(1);

/** Each member's colour, dash and marker, by its place among the sorted members (the report and the dashboard alike). */
export function memberStyles(peers: string[]): Map<string, { colour: string; dash: string; marker: (typeof MARKERS)[number] }> {
  return new Map(
    [...peers].sort().map((p, i) => [p, { colour: COLOURS[i % COLOURS.length]!, dash: DASHES[i % DASHES.length]!, marker: MARKERS[i % MARKERS.length]! }]),
  );
}

export interface Series {
  name: string;
  colour: string;
  points: [number, number][];
  dash?: string;
  marker?: (typeof MARKERS)[number];
}

interface PlotOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  /** x values to label (every one given). */
  xTicks?: number[];
  /** A dashed reference line, e.g. the chance level. */
  ref?: { value: number; label: string };
  /** Bounds the scaled axis may not pass (e.g. 0..100 for percentages). */
  clamp?: [number, number];
  w?: number;
  h?: number;
  /** Draw markers at the points (iterations, not training steps). */
  markers?: boolean;
}

function marker(kind: Series["marker"], x: number, y: number, colour: string): string {
  const r = 3.5;
  switch (kind) {
    case "square":
      return `<rect x="${f1(x - r)}" y="${f1(y - r)}" width="${2 * r}" height="${2 * r}" fill="${colour}"/>`;
    case "triangle":
      return `<path d="M${f1(x)},${f1(y - r - 1)} L${f1(x + r + 1)},${f1(y + r)} L${f1(x - r - 1)},${f1(y + r)} Z" fill="${colour}"/>`;
    case "diamond":
      return `<path d="M${f1(x)},${f1(y - r - 1)} L${f1(x + r + 1)},${f1(y)} L${f1(x)},${f1(y + r + 1)} L${f1(x - r - 1)},${f1(y)} Z" fill="${colour}"/>`;
    default:
      return `<circle cx="${f1(x)}" cy="${f1(y)}" r="${r}" fill="${colour}"/>`;
  }
}

/** "Nice" tick values covering lo..hi. */
function ticks(lo: number, hi: number, count = 5): number[] {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

/** A line chart as inline SVG, its y axis scaled to the data (and the reference line). */
export function plot(series: Series[], o: PlotOptions): string {
  const w = o.w ?? 340,
    h = o.h ?? 230;
  const m = { l: 50, r: 12, t: 24, b: 40 };
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return `<p class="muted">${esc(o.title)}: no data</p>`;
  const xs = pts.map((p) => p[0]);
  const ys = [...pts.map((p) => p[1]), ...(o.ref ? [o.ref.value] : [])];
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x1 === x0) x1 = x0 + 1;
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = (y1 - y0) * 0.08 || Math.max(1e-3, Math.abs(y1) * 0.1);
  y0 -= pad;
  y1 += pad;
  if (o.clamp) [y0, y1] = [Math.max(o.clamp[0], y0), Math.min(o.clamp[1], y1)];
  const X = (v: number) => m.l + ((v - x0) / (x1 - x0)) * (w - m.l - m.r);
  const Y = (v: number) => h - m.b - ((v - y0) / (y1 - y0)) * (h - m.t - m.b);
  const yt = ticks(y0, y1);
  const digits = Math.max(0, -Math.floor(Math.log10((yt[1] ?? 1) - (yt[0] ?? 0) || 1)));
  let g = yt
    .map(
      (v) =>
        `<line x1="${m.l}" x2="${w - m.r}" y1="${f1(Y(v))}" y2="${f1(Y(v))}" stroke="#e6e6e6"/><text x="${m.l - 4}" y="${f1(Y(v) + 4)}" text-anchor="end" font-size="10">${v.toFixed(digits)}</text>`,
    )
    .join("");
  g += (o.xTicks ?? ticks(x0, x1)).map((v) => `<text x="${f1(X(v))}" y="${h - m.b + 14}" text-anchor="middle" font-size="10">${v}</text>`).join("");
  g += `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${h - m.b}" stroke="#999"/><line x1="${m.l}" x2="${w - m.r}" y1="${h - m.b}" y2="${h - m.b}" stroke="#999"/>`;
  if (o.ref) {
    g += `<line x1="${m.l}" x2="${w - m.r}" y1="${f1(Y(o.ref.value))}" y2="${f1(Y(o.ref.value))}" stroke="#888" stroke-dasharray="3 3"/>`;
    g += `<text x="${w - m.r - 2}" y="${f1(Y(o.ref.value) - 3)}" text-anchor="end" font-size="10" fill="#666">${esc(o.ref.label)}</text>`;
  }
  g += `<text x="${(m.l + w - m.r) / 2}" y="${h - 6}" text-anchor="middle" font-size="11">${esc(o.xTitle)}</text>`;
  g += `<text transform="translate(13,${(m.t + h - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="11">${esc(o.yTitle)}</text>`;
  g += `<text x="${w / 2}" y="15" text-anchor="middle" font-size="12" font-weight="bold">${esc(o.title)}</text>`;
  for (const s of series) {
    const d = s.points.map(([x, y], j) => `${j ? "L" : "M"}${f1(X(x))},${f1(Y(y))}`).join(" ");
    g += `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}><title>${esc(s.name)}</title></path>`;
    if (o.markers) g += s.points.map(([x, y]) => marker(s.marker, X(x), Y(y), s.colour)).join("");
  }
  return `<svg width="${w}" height="${h}" role="img" aria-label="${esc(o.title)}">${g}</svg>`;
}

/** A legend entry drawn like its line (colour, dash, marker). */
export function legendEntry(s: Pick<Series, "name" | "colour" | "dash" | "marker">): string {
  return `<span class="key"><svg width="34" height="12"><line x1="1" x2="33" y1="6" y2="6" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>${s.marker ? marker(s.marker, 17, 6, s.colour) : ""}</svg>${esc(s.name)}</span>`;
}

export function renderHtml(report: Report, examples: Map<number, ExamplePair[]> = new Map()): string {
  const its = report.iterations.map((i) => i.iteration);
  const style = memberStyles(report.peers);
  const memberSeries = (value: (it: Report["iterations"][number], peer: string) => number | undefined): Series[] =>
    report.peers.map((peer) => ({
      name: peer,
      ...style.get(peer)!,
      points: report.iterations.flatMap((it) => {
        const v = value(it, peer);
        return v === undefined ? [] : [[it.iteration, v * 100] as [number, number]];
      }),
    }));
  const panel: Series = { name: "panel average", colour: "#000", dash: "4 2", points: report.iterations.map((it) => [it.iteration, it.panelAverage * 100]) };
  const axes = { xTitle: "iteration (0 = before training)", yTitle: "accuracy (%)", xTicks: its, clamp: [0, 100] as [number, number], markers: true };
  const chanceAvg =
    report.chance && report.suites.every((s) => report.chance![s] !== undefined)
      ? (report.suites.reduce((a, s) => a + report.chance![s]!, 0) / report.suites.length) * 100
      : undefined;
  const overall = plot([...memberSeries((it, p) => it.average[p]), panel], {
    ...axes,
    title: "Average accuracy",
    w: 460,
    h: 280,
    ...(chanceAvg !== undefined ? { ref: { value: chanceAvg, label: `chance ${chanceAvg.toFixed(1)}` } } : {}),
  });
  const perSuite = report.suites
    .map((s) => {
      const c = report.chance?.[s];
      return plot(
        memberSeries((it, p) => it.scores[p]?.[s]),
        { ...axes, title: s, ...(c !== undefined ? { ref: { value: c * 100, label: `chance ${(c * 100).toFixed(c < 0.1 ? 1 : 0)}` } } : {}) },
      );
    })
    .join("\n");
  const legend = [
    ...report.peers.map((p) => legendEntry({ name: p, ...style.get(p)! })),
    legendEntry(panel),
    ...(report.chance ? [legendEntry({ name: "chance level", colour: "#888", dash: "3 3" })] : []),
  ].join(" ");

  const pct = (v: number | undefined) => (v === undefined ? "–" : (v * 100).toFixed(1));
  const delta = (v: number | undefined, base: number | undefined) =>
    v === undefined || base === undefined ? "" : `${v >= base ? "+" : ""}${((v - base) * 100).toFixed(1)}`;
  const first = report.iterations[0];
  const rows = report.peers
    .flatMap((peer) =>
      report.iterations
        .filter((it) => it.scores[peer])
        .map(
          (it) =>
            `<tr><td>${esc(peer)}${report.hostile?.members[peer] ? ` <span class="hostile">(hostile judge: ${esc(report.hostile.members[peer])})</span>` : ""}</td><td>${it.iteration}</td>${report.suites.map((s) => `<td>${pct(it.scores[peer]![s])}</td>`).join("")}<td><b>${pct(it.average[peer])}</b></td><td>${it.iteration === first?.iteration ? "" : delta(it.average[peer], first?.average[peer])}</td></tr>`,
        ),
    )
    .join("\n");
  const panelRows = report.iterations
    .map(
      (it) =>
        `<tr class="panel"><td>panel average</td><td>${it.iteration}</td>${report.suites.map(() => "<td></td>").join("")}<td><b>${pct(it.panelAverage)}</b></td><td>${it.iteration === first?.iteration ? "" : delta(it.panelAverage, first?.panelAverage)}</td></tr>`,
    )
    .join("\n");
  const chanceRow = report.chance
    ? `<tr class="chance"><td>chance</td><td></td>${report.suites.map((s) => `<td>${pct(report.chance![s])}</td>`).join("")}<td></td><td></td></tr>`
    : "";
  const pairs = report.iterations
    .filter((it) => it.iteration > 0)
    .map((it) => `iteration ${it.iteration}: ${it.pairs} pairs`)
    .join(", ");
  const last = report.iterations.at(-1);
  const gain =
    first && last && last !== first
      ? ` The panel average went from ${pct(first.panelAverage)} to ${pct(last.panelAverage)} (${delta(last.panelAverage, first.panelAverage)} points).`
      : "";
  const hostile = report.hostile
    ? ` ${Object.keys(report.hostile.members).join(", ")} judged adversarially on purpose; the honest members' mean gain: ${delta(report.hostile.meanGain, 0)} points.`
    : "";

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Panel-of-Peers — ${esc(report.experiment)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}td:first-child,th:first-child{text-align:left}tr.panel td{background:#f4f4f4}tr.chance td{color:#777}.plots{display:flex;flex-wrap:wrap;gap:14px}.key{margin-right:14px;white-space:nowrap}.key svg{vertical-align:middle;margin-right:4px}.muted{color:#777}
.pairs td{text-align:left}.pairs img{image-rendering:pixelated;width:128px;height:auto}.chosen{color:#2e7d32}.rejected{color:#c62828}code{background:#f4f4f4;padding:0 3px}.hostile{color:#c62828}</style>
</head><body>
<h1>Panel-of-Peers: ${esc(report.experiment)}</h1>
<p>Benchmark accuracy (%) of each panel member after each iteration; iteration 0 is before any training. Preference pairs: ${esc(pairs || "none")}.${esc(gain)}${esc(hostile)}</p>
<p>${legend}</p>
<div class="plots">${overall}</div>
<h2>Per suite</h2>
<div class="plots">${perSuite}</div>
<h2>Table</h2>
<table id="scores"><thead><tr><th>member</th><th>iteration</th>${report.suites.map((s) => `<th>${esc(s)}</th>`).join("")}<th>average</th><th>change since iteration ${first?.iteration ?? 0}</th></tr></thead>
<tbody>
${rows}
${panelRows}
${chanceRow}
</tbody></table>
${trainingSection(report.training ?? [], style)}
${costSection(report.cost ?? [])}
${precisionHtml(report.iterations)}
${examplesSection(examples)}
${settingsSection(report)}
</body></html>
`;
}

function trainingSection(rows: TrainingRow[], style: Map<string, { colour: string; dash: string; marker: (typeof MARKERS)[number] }>): string {
  if (rows.length === 0) return "";
  const colourOf = (peer: string) => style.get(peer) ?? { colour: "#555", dash: "", marker: "circle" as const };
  const byIter = [...new Set(rows.map((r) => r.iteration))].sort((a, b) => a - b);
  const curves = byIter
    .map((it) => {
      const of = rows.filter((r) => r.iteration === it && r.curve?.length);
      if (!of.length) return "";
      const s = (k: "loss" | "margin"): Series[] =>
        of.map((r) => ({
          name: r.peer,
          colour: colourOf(r.peer).colour,
          dash: colourOf(r.peer).dash,
          points: r.curve!.map((p) => [p.step, p[k]] as [number, number]),
        }));
      return (
        plot(s("loss"), { title: `Iteration ${it}: loss`, xTitle: "step", yTitle: "loss" }) +
        plot(s("margin"), { title: `Iteration ${it}: margin`, xTitle: "step", yTitle: "log-prob margin", ref: { value: 0, label: "no preference" } })
      );
    })
    .join("\n");
  const terms = [...new Set(rows.flatMap((r) => Object.keys(r.terms ?? {})))];
  const table = `<table><thead><tr><th>member</th><th>iteration</th><th>pairs</th><th>steps</th><th>seconds</th><th>loss first → last</th>${terms.map((t) => `<th>${esc(t)} first → last</th>`).join("")}<th>margin before → after</th></tr></thead><tbody>
${rows
  .map(
    (r) =>
      `<tr><td>${esc(r.peer)}</td><td>${r.iteration}</td><td>${r.pairs}</td><td>${r.steps}</td><td>${r.seconds.toFixed(1)}</td><td>${r.lossFirst.toFixed(3)} → ${r.lossLast.toFixed(3)}</td>${terms.map((t) => `<td>${r.terms?.[t] ? `${r.terms[t].first.toFixed(3)} → ${r.terms[t].last.toFixed(3)}` : ""}</td>`).join("")}<td>${r.marginBefore.toFixed(3)} → ${r.marginAfter.toFixed(3)}</td></tr>`,
  )
  .join("\n")}
</tbody></table>`;
  return `<h2>Training</h2>
<p>Each member's SimPO run per iteration. The loss is the sum of the terms the experiment weights (SimPO, the NLL of the chosen answers, the judge anchor); the terms are shown unweighted, so a total that rises with an added term is not divergence. The margin is the chosen answer's mean log-prob per token minus the rejected one's, on the iteration's pairs.</p>
<div class="plots">${curves}</div>
${table}`;
}

function costSection(rows: CostRow[]): string {
  if (rows.length === 0) return "";
  const body = rows
    .map((r) => {
      const pp = r.perPrompt;
      return `<tr><td>${esc(r.peer)}</td><td>${r.iteration}</td><td>${r.phase}</td><td>${r.requests}</td><td>${r.promptTokens} / ${r.completionTokens}</td><td>${r.seconds.toFixed(1)}</td><td>${pp ? `${pp.requests.toFixed(2)}, ${pp.tokens.toFixed(1)}, ${pp.seconds.toFixed(3)}` : ""}</td></tr>`;
    })
    .join("\n");
  return `<h2>Model cost</h2>
<p>What each member's model calls took per iteration and phase, as the member counted them: requests sent to the model (retries included), tokens read and generated, wall seconds of the requests; then the same per prompt of the iteration.</p>
<table id="cost"><thead><tr><th>member</th><th>iteration</th><th>phase</th><th>requests</th><th>tokens in / out</th><th>seconds</th><th>per prompt: requests, tokens, seconds</th></tr></thead><tbody>
${body}
</tbody></table>`;
}

function examplesSection(examples: Map<number, ExamplePair[]>): string {
  const its = [...examples.keys()].sort((a, b) => a - b).filter((i) => examples.get(i)!.length);
  if (its.length === 0) return "";
  const row = (e: ExamplePair) => {
    const p = e.pair;
    return `<tr><td>${e.image ? `<img src="${e.image}" alt="the prompt's image">` : `<span class="muted">(image not available)</span>`}</td><td>${e.suite ? `<span class="muted">${esc(e.suite)}</span><br>` : ""}${esc(p.question)}</td><td class="chosen"><code>${esc(p.chosen.text)}</code><br>${esc(p.chosen.author)}, ${p.chosen.score.toFixed(2)}</td><td class="rejected"><code>${esc(p.rejected.text)}</code><br>${esc(p.rejected.author)}, ${p.rejected.score.toFixed(2)}</td><td>${p.margin.toFixed(2)}</td><td>${esc(p.judges.join(", "))}</td></tr>`;
  };
  return `<h2>Example pairs</h2>
<p>What the panel taught itself: a few pairs per iteration (one per suite first), with the mean-voted scores in [0, 1]. Every pair is in pairs-iter&lt;N&gt;.jsonl.</p>
${its.map((i) => `<h3>Iteration ${i}</h3><table class="pairs"><thead><tr><th>image</th><th>question</th><th>chosen (author, score)</th><th>rejected (author, score)</th><th>margin</th><th>judges</th></tr></thead><tbody>${examples.get(i)!.map(row).join("\n")}</tbody></table>`).join("\n")}`;
}

function settingsSection(report: Report): string {
  const s = report.settings;
  if (!s) return "";
  const flat = (o: object, prefix = ""): [string, string][] =>
    Object.entries(o).flatMap(([k, v]) =>
      v && typeof v === "object" && !Array.isArray(v) ? flat(v as object, `${prefix}${k}.`) : [[`${prefix}${k}`, String(v)] as [string, string]],
    );
  return `<h2>Settings</h2>
<table class="pairs"><tbody>${flat(s)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`)
    .join("")}</tbody></table>`;
}
