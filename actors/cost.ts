/**
 * The model cost of one actor process, by iteration and phase: every model call a role makes
 * goes through {@link CostMeter.meter}, which collects what the backend reports for it
 * (actors/models/usage.ts). The heartbeat shows the running totals; training_done carries the
 * iteration's, so they outlive the run in the control stream.
 */
import { MEMBER_COST_ITERATIONS, type Member, type Phase, type PhaseCost } from "../protocol/mod.ts";
import { modelCallStarted } from "./metrics.ts";
import { addPhaseCost, meterUsage, NO_USAGE, type Usage } from "./models/usage.ts";

export class CostMeter {
  private total: PhaseCost = {};
  private readonly iterations = new Map<number, PhaseCost>();

  /** Runs a model call of `phase` for `iteration`, counting what it cost (also when it fails). */
  async meter<T>(iteration: number, phase: Phase, call: () => Promise<T>): Promise<T> {
    const usage: Usage = { ...NO_USAGE };
    const ended = modelCallStarted(iteration, phase);
    let ok = false;
    try {
      const result = (await meterUsage(call, usage)).result;
      ok = true;
      return result;
    } finally {
      this.add(iteration, { [phase]: usage });
      ended(usage, ok);
    }
  }

  /** What `iteration` cost this process so far, by phase (empty when nothing was counted). */
  of(iteration: number): PhaseCost {
    return this.iterations.get(iteration) ?? {};
  }

  /** The running totals for the member record: all iterations' and the latest few's own. */
  snapshot(): NonNullable<Member["cost"]> {
    const latest = [...this.iterations.keys()].sort((a, b) => a - b).slice(-MEMBER_COST_ITERATIONS);
    return { total: this.total, iterations: latest.map((iteration) => ({ iteration, phases: this.of(iteration) })) };
  }

  private add(iteration: number, cost: PhaseCost): void {
    this.total = addPhaseCost(this.total, cost);
    this.iterations.set(iteration, addPhaseCost(this.of(iteration), cost));
  }
}
