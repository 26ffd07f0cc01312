/**
 * Writes a run's scalars where trackers look: `tensorboard/<member>/events.out.tfevents.*` (one
 * TensorBoard run per member: `tensorboard --logdir <out>/tensorboard`) and `metrics.jsonl` (one
 * JSON object per scalar, for W&B or MLflow import scripts). A rewrite of the same folder replaces
 * both, so a report written twice does not show its points twice.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Report } from "../report/shape.ts";
import { reportScalars, type Scalar } from "./scalars.ts";
import { eventFile, eventFileName } from "./tfevents.ts";

export function writeRunScalars(dir: string, report: Report): Scalar[] {
  const scalars = reportScalars(report);
  writeFileSync(join(dir, "metrics.jsonl"), scalars.map((s) => JSON.stringify(s)).join("\n") + (scalars.length ? "\n" : ""));
  const root = join(dir, "tensorboard");
  rmSync(root, { recursive: true, force: true });
  const wallTime = (report.date ? Date.parse(report.date) : Date.now()) / 1000;
  const byMember = new Map<string, Scalar[]>();
  for (const s of scalars) byMember.set(s.member, [...(byMember.get(s.member) ?? []), s]);
  for (const [member, points] of byMember) {
    mkdirSync(join(root, member), { recursive: true });
    const events = points.map((p) => ({ tag: p.tag, step: p.step, value: p.value, wallTime: p.wall_time }));
    writeFileSync(join(root, member, eventFileName(wallTime, hostname())), eventFile(events, wallTime));
  }
  return scalars;
}
