/** report.html: the table and line plots as inline SVG, no scripts, no network. */
import type { Report } from "./report.ts";

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

interface Series {
  name: string;
  colour: string;
  points: [number, number][];
  dashed?: boolean;
}

function plot(title: string, series: Series[], iterations: number[], w = 320, h = 200): string {
  const m = { l: 36, r: 10, t: 24, b: 28 };
  const xMax = Math.max(1, ...iterations);
  const x = (i: number) => m.l + (i / xMax) * (w - m.l - m.r);
  const y = (v: number) => h - m.b - v * (h - m.t - m.b);
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((v) => `<line x1="${m.l}" x2="${w - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${m.l - 4}" y="${y(v) + 4}" text-anchor="end" font-size="10">${v * 100}</text>`)
    .join("");
  const ticks = iterations.map((i) => `<text x="${x(i)}" y="${h - m.b + 14}" text-anchor="middle" font-size="10">${i}</text>`).join("");
  const lines = series
    .map((s) => {
      const d = s.points.map(([i, v], j) => `${j ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      const dots = s.points.map(([i, v]) => `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${s.colour}"/>`).join("");
      return `<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>${dots}`;
    })
    .join("");
  return `<svg width="${w}" height="${h}" role="img" aria-label="${esc(title)}"><text x="${w / 2}" y="14" text-anchor="middle" font-size="12" font-weight="bold">${esc(title)}</text>${grid}${ticks}${lines}</svg>`;
}

export function renderHtml(report: Report): string {
  const its = report.iterations.map((i) => i.iteration);
  const colour = new Map(report.peers.map((p, i) => [p, COLOURS[i % COLOURS.length]!]));
  const memberSeries = (value: (it: Report["iterations"][number], peer: string) => number | undefined): Series[] =>
    report.peers.map((peer) => ({
      name: peer,
      colour: colour.get(peer)!,
      points: report.iterations.flatMap((it) => {
        const v = value(it, peer);
        return v === undefined ? [] : [[it.iteration, v] as [number, number]];
      }),
    }));
  const overall = plot("Average accuracy (%)", [
    ...memberSeries((it, p) => it.average[p]),
    { name: "panel", colour: "#000", dashed: true, points: report.iterations.map((it) => [it.iteration, it.panelAverage]) },
  ], its, 420, 260);
  const perSuite = report.suites.map((s) => plot(s, memberSeries((it, p) => it.scores[p]?.[s]), its)).join("\n");
  const legend = [...report.peers.map((p) => `<span style="color:${colour.get(p)}">&#9632; ${esc(p)}</span>`), `<span>&#9476; panel average</span>`].join(" &nbsp; ");
  const pct = (v: number | undefined) => (v === undefined ? "–" : (v * 100).toFixed(1));
  const rows = report.peers
    .flatMap((peer) =>
      report.iterations
        .filter((it) => it.scores[peer])
        .map((it) => `<tr><td>${esc(peer)}</td><td>${it.iteration}</td>${report.suites.map((s) => `<td>${pct(it.scores[peer]![s])}</td>`).join("")}<td><b>${pct(it.average[peer])}</b></td></tr>`),
    )
    .join("\n");
  const panelRows = report.iterations
    .map((it) => `<tr class="panel"><td>panel average</td><td>${it.iteration}</td>${report.suites.map(() => "<td></td>").join("")}<td><b>${pct(it.panelAverage)}</b></td></tr>`)
    .join("\n");
  const pairs = report.iterations.filter((it) => it.iteration > 0).map((it) => `iteration ${it.iteration}: ${it.pairs} pairs`).join(", ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Panel-of-Peers — ${esc(report.experiment)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}tr.panel td{background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:12px}</style>
</head><body>
<h1>Panel-of-Peers: ${esc(report.experiment)}</h1>
<p>Benchmark accuracy (%) of each panel member after each iteration; iteration 0 is before any training. Preference pairs: ${esc(pairs || "none")}.</p>
<p>${legend}</p>
<div class="plots">${overall}</div>
<h2>Per suite</h2>
<div class="plots">${perSuite}</div>
<h2>Table</h2>
<table><thead><tr><th>member</th><th>iteration</th>${report.suites.map((s) => `<th>${esc(s)}</th>`).join("")}<th>average</th></tr></thead>
<tbody>
${rows}
${panelRows}
</tbody></table>
</body></html>
`;
}
