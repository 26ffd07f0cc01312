/** `pop compare`: several runs' scores, gains, pairs, time and curves side by side. */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError, type Flags } from "../args.ts";
import { loadRuns } from "../../observe/compare/runs.ts";
import { formatComparison } from "../../observe/compare/table.ts";
import { renderComparison } from "../../observe/compare/html.ts";

export const compareHelp = `pop compare RUN_A RUN_B ... [options]

Puts runs side by side: prints one line per run (panel average first and last, gain, pairs,
wall and training time, commit, date) and each run's average accuracy per member and iteration
with its gain, and writes compare.html (one offline file: the runs' panel averages on one plot,
then each run's accuracy per iteration and training loss). A RUN is a run's output folder (the
demo's --out, pop report's --out) or a report.json; reports of any schema version are read.

  --out FILE           where to write the page                              default: compare.html`;

export async function runCompare(flags: Flags): Promise<void> {
  const out = resolve(flags.string("out") ?? "compare.html");
  flags.rejectUnknown();
  const paths = flags.positionals();
  if (paths.length === 0) throw new UsageError("name at least one run (a run folder or a report.json)", compareHelp);
  const runs = loadRuns(paths);
  writeFileSync(out, renderComparison(runs));
  process.stdout.write(`${formatComparison(runs)}\n\nwrote ${out}\n`);
}
