/**
 * A report's numbers as scalars an experiment tracker reads: one series per member and tag.
 *
 *   eval/<suite>, eval/average   step = iteration (0 = before training)
 *   train/loss, train/margin     step = the member's training step counted across iterations
 *                                (iteration 2's step 1 follows iteration 1's last step)
 *   cost/<phase>_seconds         step = iteration
 *
 * The panel average goes under the member {@link PANEL}, a name no member can have.
 */
import type { Report } from "../report/shape.ts";

/** The pseudo-member of the panel's own series (member names start with a letter or digit). */
export const PANEL = "_panel";

/** One point: the shape W&B's and MLflow's import scripts take (one JSON object per line). */
export interface Scalar {
  run: string;
  member: string;
  tag: string;
  step: number;
  value: number;
  /** Seconds since the epoch. */
  wall_time: number;
}

/** Every scalar of the report, each point stamped with the report's date (the report keeps no per-point times). */
export function reportScalars(report: Report): Scalar[] {
  const wall_time = (report.date ? Date.parse(report.date) : Date.now()) / 1000;
  const out: Scalar[] = [];
  const add = (member: string, tag: string, step: number, value: number) => {
    if (Number.isFinite(value)) out.push({ run: report.experiment, member, tag, step, value, wall_time });
  };
  for (const it of report.iterations) {
    for (const [peer, suites] of Object.entries(it.scores)) for (const [suite, v] of Object.entries(suites)) add(peer, `eval/${suite}`, it.iteration, v);
    for (const [peer, v] of Object.entries(it.average)) add(peer, "eval/average", it.iteration, v);
    add(PANEL, "eval/average", it.iteration, it.panelAverage);
  }
  const stepsBefore = new Map<string, number>();
  for (const row of [...(report.training ?? [])].sort((a, b) => a.iteration - b.iteration)) {
    const base = stepsBefore.get(row.peer) ?? 0;
    for (const p of row.curve ?? []) {
      add(row.peer, "train/loss", base + p.step, p.loss);
      add(row.peer, "train/margin", base + p.step, p.margin);
    }
    stepsBefore.set(row.peer, base + row.steps);
  }
  for (const c of report.cost ?? []) add(c.peer, `cost/${c.phase}_seconds`, c.iteration, c.seconds);
  return out;
}
