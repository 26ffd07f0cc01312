/**
 * The dashboard's page: one HTML document with its own script and styles, and uPlot inlined
 * (read from node_modules when the server starts), nothing from the network.
 * Everything a model wrote (answers, questions) is put in as text, never as markup.
 */
import type { PageAssets } from "./assets.ts";
import { FLOWS_SCRIPT, FLOWS_STYLE } from "./page-flows.ts";
import { TRAINING_MARKUP, TRAINING_SCRIPT, TRAINING_STYLE } from "./page-training.ts";

export function dashboardPage(experiment: string, assets: PageAssets): string {
  const title = `Panel-of-Peers dashboard: ${experiment.replace(/[&<>"]/g, "")}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${assets.uplotCss}</style>
<style>${STYLE}${FLOWS_STYLE}${TRAINING_STYLE}</style>
</head><body>
<header><h1>${title}</h1><span id="conn" data-testid="connection" data-state="connecting">connecting…</span></header>
<main>
<section><h2>Members</h2>
<div class="scroll"><table data-testid="members"><thead><tr><th>member</th><th>doing</th><th>model version</th><th>heartbeat</th><th>backend</th><th>host (pid)</th></tr></thead><tbody id="members"></tbody></table></div>
<p id="gone" class="muted"></p><p id="leader" data-testid="leader" class="muted">coordinator: –</p></section>
<section><h2>Iteration <span id="iter-no">–</span></h2><div id="progress" data-testid="progress"></div>
<h3>Messages per second (last 10 s)</h3><div id="rates" data-testid="rates"></div></section>
<section class="wide"><h2>Who sends what to whom</h2><div id="flows" data-testid="flows"></div></section>
<section><h2>Scores per iteration</h2><div id="scores" data-testid="scores"></div><div id="score-table"></div></section>
<section><h2>Pair precision</h2><p class="muted">Of the pairs seen so far whose prompt's right answer is known (the tiny world's pool, a benchmark file): the chosen answer right, the rejected one wrong, and both (the pair teaches the right thing). The panel never sees this.</p><div id="precision" data-testid="precision"></div></section>
<section><h2>Dead letters</h2><div id="dead" data-testid="dead-letters"></div></section>
<section class="wide"><h2>Training</h2><p class="muted">Loss and margin (chosen minus rejected, mean log-prob per token) as members report their steps.</p>
${TRAINING_MARKUP}</section>
<section class="wide"><h2>Model cost</h2><p class="muted">Per iteration, member and phase: requests to the model, tokens read / generated, seconds of the requests; then per prompt of the iteration.</p><div id="cost" data-testid="cost" class="scroll"></div></section>
<section class="wide"><h2>Pair browser</h2>
<form id="filters" data-testid="pair-filters">
<label>iteration <select id="f-iteration"><option value="">all</option></select></label>
<label>member <select id="f-member"><option value="">all</option></select></label>
<label>suite <select id="f-suite"><option value="">all</option></select></label>
<label>margin ≥ <input id="f-min" type="number" step="0.05" min="0" max="1" size="4"></label>
<label>≤ <input id="f-max" type="number" step="0.05" min="0" max="1" size="4"></label>
<button type="submit" title="filters apply as they change; this asks again">refresh</button> <span id="pair-count" data-testid="pair-count"></span>
</form>
<div class="browser"><div class="list"><table data-testid="pairs"><thead><tr><th>it</th><th>suite</th><th>question</th><th>chosen</th><th>rejected</th><th>margin</th></tr></thead><tbody id="pairs"></tbody></table>
<p><button id="more" type="button" hidden>more</button></p></div>
<div id="detail" class="detail" data-testid="pair-detail"><p class="muted">Choose a pair to see its image, both answers, every judge's scores and the vote.</p></div></div>
</section>
</main>
<script>${assets.uplotJs}</script>
<script>${SCRIPT}${FLOWS_SCRIPT}${TRAINING_SCRIPT}${LIVE_SCRIPT}</script>
</body></html>
`;
}

const STYLE = `
body{font:14px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;flex-wrap:wrap;gap:1em;align-items:baseline;padding:.6em 1.2em;background:#263238;color:#fff}
header h1{font-size:18px;margin:0}#conn{font-size:12px;opacity:.85;padding:1px 6px;border-radius:3px}
#conn[data-state=live]{background:#2e7d32}#conn[data-state=disconnected]{background:#c62828;opacity:1}
/* Columns may shrink below their content (minmax 0): wide tables scroll inside their box, the page never does. */
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,460px),1fr));gap:12px;padding:12px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;overflow:auto;min-width:0}.scroll{overflow-x:auto;max-width:100%}
section.wide{grid-column:1/-1}h2{font-size:15px;margin:.2em 0 .5em}h3{font-size:13px;margin:.8em 0 .3em}
table{border-collapse:collapse;font-size:13px}td,th{border-bottom:1px solid #eee;padding:2px 6px;text-align:left;vertical-align:top}
th{color:#555;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777;font-size:12px}
.bar{background:#eceff1;border-radius:3px;height:10px;width:220px;display:inline-block;vertical-align:middle;margin-right:6px}
.bar i{display:block;height:100%;background:#42a5f5;border-radius:3px}
.browser{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px}.list{max-height:520px;overflow:auto}.detail{overflow-x:auto}
@media (max-width:900px){.browser{grid-template-columns:minmax(0,1fr)}}
#pairs td{overflow-wrap:anywhere}
#pairs tr{cursor:pointer}#pairs tr:hover{background:#e3f2fd}#pairs tr.sel{background:#bbdefb}
.detail img{image-rendering:pixelated;width:192px;height:auto;border:1px solid #ccc;margin:0 8px 8px 0}
.ans{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,monospace;background:#f5f5f5;padding:2px 4px}
.chosen{color:#2e7d32}.rejected{color:#c62828}form label{margin-right:.8em}
.mark{font-weight:bold;margin-left:4px}.mark.right{color:#2e7d32}.mark.wrong{color:#c62828}
svg text{font-size:11px;fill:#333}`;

// The page's script. Plain ES2020; uPlot (inlined before it) draws the training plots.
const SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
const pct = (x) => (x === undefined ? "–" : (x * 100).toFixed(1));
const ago = (ms) => (ms < 1000 ? "now" : ms < 60000 ? Math.round(ms / 1000) + " s ago" : Math.round(ms / 60000) + " min ago");
// Colours and dashes come with the data (report.html's palette and patterns).
let colours = {}, dashes = {};
const colour = (peer) => colours[peer] || "#555";
const memberDash = (peer) => dashes[peer] || [];

function renderMembers(s) {
  const body = $("members");
  body.replaceChildren(...s.members.map((m) => el("tr", { "data-testid": "member-row", "data-peer": m.peer },
    el("td", {}, el("b", { style: "color:" + colour(m.peer) }, m.peer)), el("td", { "data-testid": "doing" }, m.doing), el("td", {}, m.modelVersion),
    el("td", {}, ago(m.heartbeatAgeMs)), el("td", {}, m.backend), el("td", {}, m.host + " (" + m.pid + ")"))));
  $("gone").textContent = s.gone.length ? "not running now: " + s.gone.join(", ") : "";
}

let history = [];
function renderProgress(s) {
  const it = s.iterations.find((i) => i.iteration === s.current);
  const L = s.leader;
  $("leader").textContent = !L ? "coordinator: no lease yet" : L.released ? "coordinator: none leads (" + L.instance + " let go; token " + L.token + ")"
    : "coordinator: " + L.instance + " leads since " + new Date(L.since).toISOString().slice(11, 19) + ", token " + L.token + ", renewed " + Math.round((s.now - L.renewedAt) / 1000) + " s ago";
  $("iter-no").textContent = it ? it.iteration + (s.done ? " (experiment done)" : "") : "– (no iteration opened yet)";
  if (!it) return $("progress").replaceChildren(el("p", { class: "muted" }, "waiting for the coordinator to open an iteration"));
  history.push({ at: s.now, c: it.candidates, v: it.verdicts, it: it.iteration });
  history = history.filter((h) => h.it === it.iteration && s.now - h.at < 20000);
  const first = history[0];
  const row = (name, done, total, key) => {
    let extra = "";
    if (total && first && s.now > first.at && done < total) {
      const rate = (done - first[key]) / ((s.now - first.at) / 1000);
      if (rate > 0) extra = rate.toFixed(0) + "/s, about " + Math.ceil((total - done) / rate) + " s to go";
    }
    const frac = total ? Math.min(1, done / total) : 0;
    return el("tr", {}, el("td", {}, name), el("td", {}, el("span", { class: "bar" }, el("i", { style: "width:" + (frac * 100).toFixed(1) + "%" }))),
      el("td", { class: "num", "data-testid": "count-" + name }, done + (total ? " / " + total : "")), el("td", { class: "muted" }, extra));
  };
  const closed = it.closed ? "voted " + it.closed.voted + " prompts, kept " + it.closed.pairs + " pairs" : "collecting";
  $("progress").replaceChildren(el("table", {},
    row("prompts", it.prompts, 0), row("candidates", it.candidates, it.expected.candidates, "c"), row("verdicts", it.verdicts, it.expected.verdicts, "v"),
    row("pairs", it.pairs, 0), row("trained", it.trained.length, it.peers.length)),
    el("p", { class: "muted" }, "panel: " + it.peers.join(", ") + " · " + closed));
  const rates = Object.entries(s.rates).sort();
  $("rates").replaceChildren(rates.length ? el("table", {}, ...rates.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, v.toFixed(1))))) : el("p", { class: "muted" }, "no messages in the last 10 s"));
}

function renderScores(s) {
  const peers = [...new Set(s.scores.flatMap((x) => Object.keys(x.peers)))].sort();
  $("scores").innerHTML = s.charts.scores;
  if (!s.scores.length) return $("score-table").replaceChildren();
  const suites = [...new Set(s.scores.flatMap((x) => Object.values(x.peers).flatMap((p) => Object.keys(p))))].filter((k) => k !== "average").sort().concat(["average"]);
  const first = s.scores[0], last = s.scores[s.scores.length - 1];
  const head = el("tr", {}, el("th", {}, "member"), el("th", {}, "iteration"), ...suites.map((x) => el("th", { class: "num" }, x)));
  const rows = peers.map((p) => el("tr", { "data-testid": "score-row" }, el("td", {}, p), el("td", {}, first.iteration + " → " + last.iteration),
    ...suites.map((k) => {
      const a = first.peers[p]?.[k], b = last.peers[p]?.[k];
      const d = a !== undefined && b !== undefined ? (b - a) * 100 : undefined;
      return el("td", { class: "num" }, pct(b) + (d !== undefined && last !== first ? " (" + (d >= 0 ? "+" : "") + d.toFixed(1) + ")" : ""));
    })));
  $("score-table").replaceChildren(el("table", {}, head, ...rows));
}

function renderPrecision(s) {
  const P = s.precision;
  if (!P) return $("precision").replaceChildren(el("p", { class: "muted" }, "no pair graded yet (or the truth of this run's prompts is not known)"));
  const share = (n, r) => el("td", { class: "num" }, pct(n / r.pairs) + "% (" + n + ")");
  const row = (label, family, r) => el("tr", { "data-testid": "precision-row" }, el("td", {}, label), el("td", {}, family === "all" ? "all families" : family), el("td", { class: "num" }, r.pairs),
    share(r.chosenRight, r), share(r.rejectedWrong, r), el("td", { class: "num" }, el("b", {}, pct(r.both / r.pairs) + "% (" + r.both + ")")));
  const a = P.total.all;
  $("precision").replaceChildren(
    el("p", { "data-testid": "precision-summary" }, a.pairs + " pairs graded: chosen right " + pct(a.chosenRight / a.pairs) + "%, rejected wrong " + pct(a.rejectedWrong / a.pairs) + "%, both " + pct(a.both / a.pairs) + "%"),
    el("table", {}, el("tr", {}, ...["iteration", "family", "pairs", "chosen right", "rejected wrong", "both"].map((h, i) => el("th", i > 1 ? { class: "num" } : {}, h))),
      ...P.iterations.flatMap((it) => Object.entries(it.table).map(([f, r]) => row(it.iteration, f, r))),
      // The rows over all iterations only where there are several (with one they repeat it).
      ...(P.iterations.length > 1 ? Object.entries(P.total).map(([f, r]) => row("all", f, r)) : [])));
}

// A right/wrong mark after an answer whose prompt's truth is known; nothing otherwise.
const mark = (right) => right === undefined ? "" : el("span", { class: "mark " + (right ? "right" : "wrong"), "data-testid": "truth-mark", title: right ? "right (against the known truth)" : "wrong (against the known truth)" }, right ? "✓" : "✗");

function renderCost(s) {
  if (!s.cost.length) return $("cost").replaceChildren(el("p", { class: "muted" }, "nothing counted yet"));
  const num = (x, d) => el("td", { class: "num" }, x === undefined ? "–" : Number.isInteger(x) ? x : x.toFixed(d));
  const head = el("tr", {}, ...["iteration", "member", "phase", "requests", "tokens in / out", "seconds", "req/prompt", "tok/prompt", "s/prompt"].map((h, i) => el("th", i > 2 ? { class: "num" } : {}, h)));
  const rows = s.cost.map((r) => el("tr", { "data-testid": "cost-row" }, el("td", {}, r.iteration), el("td", {}, r.peer), el("td", {}, r.phase), num(r.requests), el("td", { class: "num" }, r.promptTokens + " / " + r.completionTokens),
    num(r.seconds, 1), num(r.perPrompt?.requests, 2), num(r.perPrompt?.tokens, 1), num(r.perPrompt?.seconds, 3)));
  $("cost").replaceChildren(el("table", {}, head, ...rows));
}

function renderDead(s) {
  $("dead").replaceChildren(s.deadLetters.length
    ? el("table", {}, ...s.deadLetters.map((d) => el("tr", { "data-testid": "dead-row" }, el("td", {}, new Date(d.at).toLocaleTimeString()), el("td", {}, d.reason), el("td", {}, d.detail.slice(0, 200)), el("td", { class: "muted" }, d.subject))))
    : el("p", { class: "muted" }, "none"));
}

let known = { iterations: "", members: "" };
function renderFilters(s) {
  const its = s.iterations.filter((i) => i.pairs > 0).map((i) => String(i.iteration));
  const peers = [...new Set(s.iterations.flatMap((i) => i.peers))].sort();
  const fill = (id, values, key) => {
    if (known[key] === values.join()) return;
    known[key] = values.join();
    const sel = $(id), was = sel.value;
    sel.replaceChildren(el("option", { value: "" }, "all"), ...values.map((v) => el("option", { value: v }, v)));
    sel.value = values.includes(was) ? was : "";
  };
  fill("f-iteration", its, "iterations");
  fill("f-member", peers, "members");
}

function render(s) {
  colours = s.charts.colours; dashes = s.charts.dashes;
  renderMembers(s); renderProgress(s); renderFlows(s); renderScores(s); renderPrecision(s); renderTraining(s); renderCost(s); renderDead(s); renderFilters(s);
  // A short list fills itself as pairs are voted; a full one waits for a filter change or "refresh" (it would jump).
  if (s.pairsKept > 0 && (!pairsLoaded || (s.pairsKept !== keptAtLoad && $("pairs").children.length < 50))) loadPairs(false);
  keptAtLoad = s.pairsKept;
  // A pair opened before all its verdicts reached the dashboard fills in as they arrive.
  if (selected && detailShort && !detailAsking) openPair(selected);
}
let keptAtLoad = 0;

// ---- pair browser ----
let pairsLoaded = false, offset = 0, selected, pairAsk = 0, detailShort = false, detailAsking = false, detailTries = 0, detailFor;
async function loadPairs(more) {
  pairsLoaded = true;
  const ask = ++pairAsk;
  offset = more ? offset + 50 : 0;
  const q = new URLSearchParams({ offset: String(offset), limit: "50" });
  for (const [k, id] of [["iteration", "f-iteration"], ["member", "f-member"], ["suite", "f-suite"], ["minMargin", "f-min"], ["maxMargin", "f-max"]]) if ($(id).value !== "") q.set(k, $(id).value);
  const r = await fetch("api/pairs?" + q);
  // Filters change as one types: only the latest question's answer is shown.
  if (ask !== pairAsk) return;
  if (!r.ok) { $("pair-count").textContent = await r.text(); return; }
  const d = await r.json();
  if (ask !== pairAsk) return;
  const suiteSel = $("f-suite");
  if (known.suites !== d.suites.join()) {
    known.suites = d.suites.join();
    const was = suiteSel.value;
    suiteSel.replaceChildren(el("option", { value: "" }, "all"), ...d.suites.map((v) => el("option", { value: v }, v)));
    suiteSel.value = d.suites.includes(was) ? was : "";
  }
  const rows = d.rows.map((p) => {
    const tr = el("tr", { "data-testid": "pair-row", "data-pair": p.pairId, class: p.pairId === selected ? "sel" : undefined }, el("td", {}, p.iteration), el("td", {}, p.suite || ""), el("td", {}, p.question),
      el("td", { class: "chosen" }, p.chosen.text + " (" + p.chosen.author + ")", mark(p.chosen.right)), el("td", { class: "rejected" }, p.rejected.text + " (" + p.rejected.author + ")", mark(p.rejected.right)), el("td", { class: "num" }, p.margin.toFixed(2)));
    tr.addEventListener("click", () => openPair(p.pairId, tr));
    return tr;
  });
  if (more) $("pairs").append(...rows); else $("pairs").replaceChildren(...rows);
  $("pair-count").textContent = d.total + " pairs match" + (d.total > offset + d.rows.length ? " (showing " + (offset + d.rows.length) + ")" : "");
  $("more").hidden = d.total <= offset + d.rows.length;
}

async function openPair(id, tr) {
  selected = id;
  for (const x of document.querySelectorAll("#pairs tr.sel")) x.classList.remove("sel");
  if (tr) tr.classList.add("sel");
  detailAsking = true;
  let r, p;
  try {
    r = await fetch("api/pairs/" + encodeURIComponent(id));
    if (!r.ok) return $("detail").replaceChildren(el("p", {}, await r.text()));
    p = await r.json();
  } finally { detailAsking = false; }
  if (selected !== id) return;
  // Each judge scored both answers but its own; the old verdicts of a long run may have been let go (then it stops asking after a minute).
  const expected = p.judges.filter((j) => j !== p.chosen.author).length + p.judges.filter((j) => j !== p.rejected.author).length;
  detailTries = detailShort && selected === detailFor ? detailTries + 1 : 0;
  detailFor = id;
  detailShort = p.verdicts.chosen.length + p.verdicts.rejected.length < expected && detailTries < 60;
  const imgs = Array.from({ length: p.images }, (_, i) => el("img", { src: "api/pairs/" + encodeURIComponent(id) + "/image/" + i, alt: "image " + (i + 1) + " of the prompt", "data-testid": "pair-image" }));
  const CRIT = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"];
  const judges = (side, list) => list.map((v) => el("tr", { "data-testid": "judge-row" }, el("td", { class: side }, side), el("td", {}, v.judge),
    ...(v.likert ? CRIT.map((c) => el("td", { class: "num" }, v.likert[c].toFixed(2))) : [el("td", { colspan: "5", class: "muted" }, "abstained: " + v.abstained)])));
  const vt = el("table", {}, el("tr", {}, el("th", {}, "answer"), el("th", {}, "judge"), ...CRIT.map((c) => el("th", { class: "num" }, c))), ...judges("chosen", p.verdicts.chosen), ...judges("rejected", p.verdicts.rejected));
  $("detail").replaceChildren(
    el("div", {}, ...imgs),
    el("p", {}, el("b", {}, "question: "), p.question, p.suite ? el("span", { class: "muted" }, "  (" + p.suite + ")") : ""),
    el("p", { class: "chosen" }, el("b", {}, "chosen "), "(" + p.chosen.author + ", voted " + p.chosen.score.toFixed(3) + "): ", el("span", { class: "ans", "data-testid": "chosen-text" }, p.chosen.text), mark(p.chosen.right)),
    el("p", { class: "rejected" }, el("b", {}, "rejected "), "(" + p.rejected.author + ", voted " + p.rejected.score.toFixed(3) + "): ", el("span", { class: "ans" }, p.rejected.text), mark(p.rejected.right)),
    el("p", {}, "vote: margin " + p.margin.toFixed(3) + " from the mean of " + p.judges.length + " judges (" + p.judges.join(", ") + ")" + (p.forPeer ? ", for " + p.forPeer : "") + "; iteration " + p.iteration + ", prompt " + p.promptId),
    el("h3", {}, "Every judge's scores (1–5)"), vt);
}

$("filters").addEventListener("submit", (e) => { e.preventDefault(); loadPairs(false); });
$("more").addEventListener("click", () => loadPairs(true));
// Filters apply as they change (typed margins after a short pause).
let filterTimer;
const refilter = (ms) => { clearTimeout(filterTimer); filterTimer = setTimeout(() => loadPairs(false), ms); };
for (const id of ["f-iteration", "f-member", "f-suite"]) $(id).addEventListener("change", () => refilter(0));
for (const id of ["f-min", "f-max"]) $(id).addEventListener("input", () => refilter(250));

`;

// The live connection: "live" while events come, "disconnected" with the last event's time when the
// stream drops or stalls (the server gone, the network down), and live again once it is back.
const LIVE_SCRIPT = String.raw`
let source, lastEventAt = 0, retry;
const clock = (t) => new Date(t).toLocaleTimeString();
function connState(state, text) { $("conn").dataset.state = state; $("conn").textContent = text; }
function disconnected() {
  connState("disconnected", "disconnected" + (lastEventAt ? " · last event " + clock(lastEventAt) : " · no event yet") + " · retrying…");
}
function connect() {
  clearTimeout(retry);
  if (source) source.close();
  const es = (source = new EventSource("api/events"));
  es.onmessage = (e) => {
    lastEventAt = Date.now();
    connState("live", "live · " + clock(lastEventAt));
    render(JSON.parse(e.data));
  };
  es.onerror = () => {
    if (es !== source) return;
    disconnected();
    // A closed source (the server answered with an error) does not retry by itself.
    if (es.readyState === EventSource.CLOSED) retry = setTimeout(connect, 2000);
  };
}
// A stream that stays open but brings nothing (pushes come every second) has stalled.
setInterval(() => {
  if (lastEventAt && Date.now() - lastEventAt > 5000 && $("conn").dataset.state === "live") { disconnected(); connect(); }
}, 1000);
connect();
`;
