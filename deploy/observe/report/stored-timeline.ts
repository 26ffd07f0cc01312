/**
 * The time breakdown of a stored run, from the times its stored messages carry: the same
 * {@link RunTimeline} the demo feeds live, fed from the read-back instead, so `pop report` gives
 * the numbers the demo prints.
 */
import { RunTimeline } from "../timeline.ts";
import type { StoredRun } from "./collect.ts";
import type { ReportTimeline } from "./shape.ts";

export function storedTimeline(run: StoredRun): ReportTimeline {
  const t = new RunTimeline();
  let first: number | undefined;
  let last: number | undefined;
  for (const c of run.control) {
    first = Math.min(first ?? c.at, c.at);
    last = Math.max(last ?? c.at, c.at);
    if (c.event === "iteration_opened") t.iterationOpened(c.iteration, c.at);
    else if (c.event === "iteration_closed") t.iterationClosed(c.iteration, c.at);
    else if (c.event === "training_done") t.trained(c.iteration, c.peer, c.at, c.result.ms);
  }
  for (const m of run.activity?.candidates ?? []) t.candidate(m.iteration, m.at);
  for (const m of run.activity?.verdicts ?? []) t.verdict(m.iteration, m.at);
  for (const e of run.evaluations) t.evaluated(e.iteration, e.peer, e.ms);
  return { ...(first !== undefined ? { startedAt: first } : {}), ...(last !== undefined ? { endedAt: last } : {}), iterations: t.timings() };
}
