/**
 * compare.html: several runs side by side in one offline file (inline SVG with report.html's
 * plotting, no scripts, nothing from the network): the panel average of every run on one plot,
 * then per run its members' average accuracy per iteration and their training loss, and the
 * table `pop compare` prints.
 */
import { legendEntry, memberStyles, plot, type Series } from "../report/html.ts";
import { runCurves, type ComparedRun } from "./runs.ts";
import { formatComparison } from "./table.ts";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

export function renderComparison(runs: ComparedRun[]): string {
  const runStyle = memberStyles(runs.map((r) => r.label));
  const its = [...new Set(runs.flatMap((r) => r.report.iterations.map((i) => i.iteration)))].sort((a, b) => a - b);
  const axes = { xTitle: "iteration (0 = before training)", yTitle: "accuracy (%)", xTicks: its, clamp: [0, 100] as [number, number], markers: true };
  const panels: Series[] = runs.map((r) => ({
    name: r.label,
    ...runStyle.get(r.label)!,
    points: r.report.iterations.map((it) => [it.iteration, it.panelAverage * 100] as [number, number]),
  }));
  const overview = plot(panels, { ...axes, title: "Panel average per run", w: 520, h: 300 });
  const perRun = runs
    .map(({ label, report: r }) => {
      const style = memberStyles(r.peers);
      const members: Series[] = r.peers.map((p) => ({
        name: p,
        ...style.get(p)!,
        points: r.iterations.flatMap((it) => (it.average[p] === undefined ? [] : [[it.iteration, it.average[p]! * 100] as [number, number]])),
      }));
      const panel: Series = { name: "panel average", colour: "#000", dash: "4 2", points: r.iterations.map((it) => [it.iteration, it.panelAverage * 100]) };
      const curves = runCurves(r);
      const loss: Series[] = [...curves.entries()].map(([p, pts]) => ({
        name: p,
        ...style.get(p),
        colour: style.get(p)?.colour ?? "#555",
        points: pts.map((q) => [q.step, q.loss]),
      }));
      const legend = [...r.peers.map((p) => legendEntry({ name: p, ...style.get(p)! })), legendEntry(panel)].join(" ");
      return `<section class="run"><h2>${esc(label)}</h2><p class="muted">${esc(r.experiment)}${r.commit ? `, commit ${esc(r.commit.slice(0, 10))}` : ""}${r.date ? `, ${esc(r.date)}` : ""}</p>
<p>${legend}</p>
${plot([...members, panel], { ...axes, xTicks: r.iterations.map((i) => i.iteration), title: "Average accuracy" })}
${plot(loss, { title: "Training loss", xTitle: "training step (across iterations)", yTitle: "loss" })}</section>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Panel-of-Peers — ${esc(runs.map((r) => r.label).join(" vs "))}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}.runs{display:flex;flex-wrap:wrap;gap:24px}.run{flex:0 0 auto}.key{margin-right:14px;white-space:nowrap}.key svg{vertical-align:middle;margin-right:4px}.muted{color:#777}pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style>
</head><body>
<h1>Panel-of-Peers: ${runs.length} runs compared</h1>
<p>${runs.map((r) => legendEntry({ name: r.label, ...runStyle.get(r.label)! })).join(" ")}</p>
${overview}
<div class="runs">${perRun}</div>
<h2>Table</h2>
<pre id="table">${esc(formatComparison(runs))}</pre>
</body></html>
`;
}
