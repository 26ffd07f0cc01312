/**
 * The runs `pop compare` puts side by side: each run's report (any schema version), a short label,
 * and the figures the table and the page share (gains, wall time, training curves on one axis).
 */
import { basename, dirname, resolve } from "node:path";
import { existsSync, statSync } from "node:fs";
import { loadReport } from "../report/load.ts";
import type { Report, TrainingPoint } from "../report/shape.ts";

/** A loaded run. */
export interface ComparedRun {
  /** The folder's name (report.json's folder for a file), made unique among the runs. */
  label: string;
  path: string;
  report: Report;
}

/** Loads each path (a run folder or a report.json) and labels it by its folder. */
export function loadRuns(paths: string[]): ComparedRun[] {
  const seen = new Map<string, number>();
  return paths.map((p) => {
    const path = resolve(p);
    const dir = existsSync(path) && statSync(path).isDirectory() ? path : dirname(path);
    const base = basename(dir) || path;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { label: n === 1 ? base : `${base}#${n}`, path, report: loadReport(path) };
  });
}

/** Last minus first iteration's average, per member and for the panel (undefined with under two iterations). */
export function gains(report: Report): { members: Record<string, number | undefined>; panel: number | undefined } {
  const first = report.iterations[0];
  const last = report.iterations.at(-1);
  const two = first && last && last !== first;
  const members: Record<string, number | undefined> = {};
  for (const p of report.peers) {
    const a = first?.average[p];
    const b = last?.average[p];
    members[p] = two && a !== undefined && b !== undefined ? b - a : undefined;
  }
  return { members, panel: two ? last.panelAverage - first.panelAverage : undefined };
}

/** The run's wall time in seconds from its timeline's ends (undefined for reports without them). */
export function wallSeconds(report: Report): number | undefined {
  const t = report.timeline;
  return t.startedAt !== undefined && t.endedAt !== undefined ? (t.endedAt - t.startedAt) / 1000 : undefined;
}

/** Seconds each member trained, summed over iterations. */
export function trainingSeconds(report: Report): number {
  return (report.training ?? []).reduce((a, r) => a + r.seconds, 0);
}

/** Each member's training curve over the whole run: a later iteration's steps follow the earlier ones' (as in the TensorBoard files). */
export function runCurves(report: Report): Map<string, TrainingPoint[]> {
  const out = new Map<string, TrainingPoint[]>();
  const before = new Map<string, number>();
  for (const row of [...(report.training ?? [])].sort((a, b) => a.iteration - b.iteration)) {
    const base = before.get(row.peer) ?? 0;
    out.set(row.peer, [...(out.get(row.peer) ?? []), ...(row.curve ?? []).map((p) => ({ ...p, step: base + p.step }))]);
    before.set(row.peer, base + row.steps);
  }
  return out;
}
