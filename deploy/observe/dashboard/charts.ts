/**
 * The dashboard's plots and member styles. The scores are drawn on the server with report.html's
 * plotting (deploy/observe/report/html.ts), so the page and the report show them the same way;
 * the training curves are drawn in the browser (uPlot, see page-training.ts) with the same
 * colours and dashes, so they can be smoothed, hovered and zoomed.
 */
import { legendEntry, memberStyles, plot, type Series } from "../report/html.ts";
import type { DashboardSnapshot } from "./state.ts";

export interface DashboardCharts {
  /** Each member's colour (tables, the flow matrix and the training plots use them too). */
  colours: Record<string, string>;
  /** Each member's dash pattern (uPlot's segment lengths; empty: solid). */
  dashes: Record<string, number[]>;
  /** SVG (or a line saying there is nothing yet), with its legend. */
  scores: string;
}

export function dashboardCharts(s: DashboardSnapshot): DashboardCharts {
  const peers = [
    ...new Set([
      ...s.iterations.flatMap((i) => i.peers),
      ...s.members.map((m) => m.peer),
      ...s.scores.flatMap((x) => Object.keys(x.peers)),
      ...s.training.map((c) => c.peer),
    ]),
  ];
  const style = memberStyles(peers);
  const scored = [...new Set(s.scores.flatMap((x) => Object.keys(x.peers)))].sort();
  const series: Series[] = scored.map((p) => ({
    name: p,
    ...style.get(p)!,
    points: s.scores.filter((x) => x.peers[p]).map((x) => [x.iteration, x.peers[p]!.average! * 100] as [number, number]),
  }));
  const panel: Series = {
    name: "panel average",
    colour: "#000",
    dash: "4 2",
    points: s.scores.map((x) => {
      const v = Object.values(x.peers).map((p) => p.average!);
      return [x.iteration, (v.reduce((a, b) => a + b, 0) / v.length) * 100] as [number, number];
    }),
  };
  const scores = s.scores.length
    ? plot([...series, panel], {
        title: "Benchmark average per member",
        xTitle: "iteration (0 = before training)",
        yTitle: "accuracy (%)",
        xTicks: s.scores.map((x) => x.iteration),
        clamp: [0, 100],
        markers: true,
        w: 440,
        h: 250,
      }) + `<div class="muted">${[...series, panel].map(legendEntry).join(" ")}</div>`
    : `<p class="muted">no evaluations yet</p>`;
  return {
    colours: Object.fromEntries([...style].map(([p, st]) => [p, st.colour])),
    dashes: Object.fromEntries([...style].map(([p, st]) => [p, st.dash ? st.dash.split(" ").map(Number) : []])),
    scores,
  };
}
