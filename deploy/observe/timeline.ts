/**
 * Where a demo's wall time went, per iteration, from the times the messages carry: answering and
 * judging (iteration opened -> last candidate batch / last verdict), the wait for the vote (last
 * verdict -> iteration closed), then training and evaluation (closed -> the last member's
 * training_done; a member evaluates before it says it is done, and its evaluation says how long
 * that took). Read from the streams the demo follows anyway.
 */

/** One iteration's phases in milliseconds (undefined where the run did not get that far). */
export interface IterationTiming {
  iteration: number;
  /** Opened -> last candidate batch. */
  answering?: number;
  /** Opened -> last verdict (answering and judging overlap). */
  collecting?: number;
  /** Last verdict -> closed. */
  voteWait?: number;
  /** Closed -> the last member's training_done, less that member's evaluation. */
  training?: number;
  /** Each member's own training time, as it reported it. */
  trainingByPeer: Record<string, number>;
  /** The evaluation of the member that finished last (iteration 0: the slowest member's). */
  evaluation?: number;
  /** When the iteration opened and when its last verdict was made (epoch ms): the answering+judging window. */
  openedAt?: number;
  lastVerdictAt?: number;
}

const latest = (m: Map<number, number>, n: number, at: number) => m.set(n, Math.max(m.get(n) ?? 0, at));

/** Collects the times; feed it every message the demo sees. */
export class RunTimeline {
  private readonly opened = new Map<number, number>();
  private readonly closed = new Map<number, number>();
  private readonly lastCandidate = new Map<number, number>();
  private readonly lastVerdict = new Map<number, number>();
  private readonly lastTrained = new Map<number, { at: number; peer: string }>();
  private readonly evaluationMs = new Map<number, Record<string, number>>();
  private readonly trainingMs = new Map<number, Record<string, number>>();

  iterationOpened(iteration: number, at: number): void {
    this.opened.set(iteration, at);
  }
  iterationClosed(iteration: number, at: number): void {
    this.closed.set(iteration, at);
  }
  candidate(iteration: number, at: number): void {
    latest(this.lastCandidate, iteration, at);
  }
  verdict(iteration: number, at: number): void {
    latest(this.lastVerdict, iteration, at);
  }
  trained(iteration: number, peer: string, at: number, ms: number): void {
    if (at >= (this.lastTrained.get(iteration)?.at ?? 0)) this.lastTrained.set(iteration, { at, peer });
    this.trainingMs.set(iteration, { ...this.trainingMs.get(iteration), [peer]: ms });
  }
  /** `ms`: how long the evaluation took (undefined from peers that do not say). */
  evaluated(iteration: number, peer: string, ms: number | undefined): void {
    if (ms !== undefined) this.evaluationMs.set(iteration, { ...this.evaluationMs.get(iteration), [peer]: ms });
  }

  /** The phases of every iteration seen, in order. */
  timings(): IterationTiming[] {
    const iterations = new Set([...this.evaluationMs.keys(), ...this.opened.keys()]);
    const span = (from: number | undefined, to: number | undefined) => (from !== undefined && to !== undefined ? Math.max(0, to - from) : undefined);
    return [...iterations]
      .sort((a, b) => a - b)
      .map((n) => {
        const opened = this.opened.get(n);
        const lastVerdict = this.lastVerdict.get(n);
        const last = this.lastTrained.get(n);
        const evals = this.evaluationMs.get(n) ?? {};
        const evaluation = n === 0 ? (Object.keys(evals).length ? Math.max(...Object.values(evals)) : undefined) : last && evals[last.peer];
        const trainingWall = span(this.closed.get(n), last?.at);
        return {
          iteration: n,
          answering: span(opened, this.lastCandidate.get(n)),
          collecting: span(opened, lastVerdict),
          voteWait: span(lastVerdict, this.closed.get(n)),
          training: trainingWall === undefined ? undefined : Math.max(0, trainingWall - (evaluation ?? 0)),
          trainingByPeer: this.trainingMs.get(n) ?? {},
          evaluation,
          openedAt: opened,
          lastVerdictAt: lastVerdict,
        };
      });
  }
}

/** The breakdown as a table, with each phase's share of the summed iterations. */
export function formatTimeline(rows: IterationTiming[], totalMs: number): string {
  const s = (ms: number | undefined) => (ms === undefined ? "-" : (ms / 1000).toFixed(1));
  const lines = [
    "where the time went (seconds of wall clock; answers/verdicts: from the iteration's opening to its last answer/verdict, so they overlap):",
    `${"iteration".padEnd(10)}${"answers".padStart(10)}${"verdicts".padStart(10)}${"vote wait".padStart(11)}${"training".padStart(10)}${"evaluation".padStart(12)}   training per member`,
  ];
  const sum = { collecting: 0, voteWait: 0, training: 0, evaluation: 0 };
  for (const r of rows) {
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += r[k] ?? 0;
    const perPeer = Object.entries(r.trainingByPeer)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([p, ms]) => `${p} ${s(ms)}`)
      .join(", ");
    lines.push(
      `${String(r.iteration).padEnd(10)}${s(r.answering).padStart(10)}${s(r.collecting).padStart(10)}${s(r.voteWait).padStart(11)}${s(r.training).padStart(10)}${s(r.evaluation).padStart(12)}   ${perPeer}`,
    );
  }
  const pct = (ms: number) => `${((100 * ms) / Math.max(1, totalMs)).toFixed(0)}%`;
  lines.push(
    `of ${s(totalMs)} s in all: answering + judging ${pct(sum.collecting)}, vote wait ${pct(sum.voteWait)}, training ${pct(sum.training)}, ` +
      `evaluation ${pct(sum.evaluation)}, the rest (start-up, pool, report) ${pct(Math.max(0, totalMs - sum.collecting - sum.voteWait - sum.training - sum.evaluation))}`,
  );
  return lines.join("\n");
}
