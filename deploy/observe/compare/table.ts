/** `pop compare`'s plain-text tables: one summary line per run, then each run's scores per member and iteration. */
import { gains, trainingSeconds, wallSeconds, type ComparedRun } from "./runs.ts";

const pct = (x: number | undefined) => (x === undefined ? "-" : (x * 100).toFixed(1));
const signed = (x: number | undefined) => (x === undefined ? "-" : `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}`);
const secs = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(1));

/** Rows of cells as aligned columns (the first left-aligned, the rest right-aligned). */
function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

export function formatComparison(runs: ComparedRun[]): string {
  const summary = columns([
    ["run", "experiment", "members", "iterations", "panel first", "panel last", "gain", "pairs", "wall s", "training s", "commit", "date"],
    ...runs.map(({ label, report: r }) => [
      label,
      r.experiment,
      String(r.peers.length),
      String(r.iterations.length),
      pct(r.iterations[0]?.panelAverage),
      pct(r.iterations.at(-1)?.panelAverage),
      signed(gains(r).panel),
      String(r.iterations.reduce((a, it) => a + it.pairs, 0)),
      secs(wallSeconds(r)),
      secs(trainingSeconds(r)),
      r.commit?.slice(0, 10) ?? "-",
      r.date?.slice(0, 19) ?? "-",
    ]),
  ]);
  const blocks = runs.map(({ label, report: r }) => {
    const its = r.iterations;
    const g = gains(r);
    const rows = [
      ["member", ...its.map((it) => `iter ${it.iteration}`), "gain"],
      ...r.peers.map((p) => [p, ...its.map((it) => pct(it.average[p])), signed(g.members[p])]),
      ["panel average", ...its.map((it) => pct(it.panelAverage)), signed(g.panel)],
      ["pairs", ...its.map((it) => (it.iteration === 0 ? "-" : String(it.pairs))), ""],
    ];
    return [`${label} (${r.experiment}): average accuracy (%) per iteration`, ...columns(rows).map((l) => `  ${l}`)].join("\n");
  });
  return [summary.join("\n"), ...blocks].join("\n\n");
}
