/**
 * The dashboard's plots, drawn on the server with report.html's plotting (deploy/observe/report/html.ts),
 * so the page and the report show scores and training curves the same way.
 */
import { legendEntry, memberStyles, plot, type Series } from "../report/html.ts";
import type { DashboardSnapshot } from "./state.ts";

/** Dash patterns telling a member's iterations apart in the training plots. */
const ITERATION_DASHES = ["", "6 3", "2 3", "8 3 2 3"];

export interface DashboardCharts {
  /** Each member's colour (tables and the flow graph use them too). */
  colours: Record<string, string>;
  /** SVG (or a line saying there is nothing yet), with its legend. */
  scores: string;
  loss: string;
  margin: string;
}

export function dashboardCharts(s: DashboardSnapshot): DashboardCharts {
  const peers = [...new Set([...s.iterations.flatMap((i) => i.peers), ...s.members.map((m) => m.peer), ...s.scores.flatMap((x) => Object.keys(x.peers))])];
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
  const curves = s.training.filter((c) => c.points.some((p) => p.loss !== undefined));
  const its = [...new Set(curves.map((c) => c.iteration))].sort((a, b) => a - b);
  const curve = (key: "loss" | "margin"): Series[] =>
    curves.map((c) => ({
      name: `${c.peer} it ${c.iteration}`,
      colour: style.get(c.peer)!.colour,
      dash: ITERATION_DASHES[its.indexOf(c.iteration) % ITERATION_DASHES.length]!,
      points: c.points.filter((p) => p[key] !== undefined).map((p) => [p.step, p[key]!] as [number, number]),
    }));
  const legend = (xs: Series[]) => `<div class="muted">${xs.map(legendEntry).join(" ")}</div>`;
  return {
    colours: Object.fromEntries([...style].map(([p, st]) => [p, st.colour])),
    scores,
    loss: curves.length ? plot(curve("loss"), { title: "Loss per step", xTitle: "step", yTitle: "loss", w: 440, h: 240 }) + legend(curve("loss")) : "",
    margin: curves.length
      ? plot(curve("margin"), {
          title: "Margin per step",
          xTitle: "step",
          yTitle: "log-prob margin",
          ref: { value: 0, label: "no preference" },
          w: 440,
          h: 240,
        }) + legend(curve("margin"))
      : "",
  };
}
