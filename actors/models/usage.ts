/**
 * Counting what model calls cost. A backend reports each request it sends to its model with
 * {@link reportUsage} (the openai client per HTTP request, retries included, so nothing is
 * counted twice or missed; the embedded model per call); whoever makes a model call collects
 * what it caused with {@link meterUsage}. The report finds its call through the async context,
 * so the contract's methods keep their signatures and calls in flight together (answering and
 * judging on one backend) are each counted apart. A report outside any metered call is dropped.
 *
 * Figures are the protocol's {@link Usage} (protocol/schemas.ts documents each).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { PhaseCost, Usage } from "../../protocol/mod.ts";

export type { Usage };

/** No cost at all. */
export const NO_USAGE: Usage = { requests: 0, promptTokens: 0, completionTokens: 0, seconds: 0 };

const current = new AsyncLocalStorage<Usage>();

/** Adds `u` to the usage of the metered call this code runs in (none: nothing is counted). */
export function reportUsage(u: Partial<Usage>): void {
  const into = current.getStore();
  if (into) addInto(into, u);
}

/**
 * Runs `fn` and collects every usage reported while it ran into `usage` (pass one to read it
 * also when `fn` fails). Nested meters collect their own and pass it on to the enclosing one, so
 * an outer total stays whole.
 */
export async function meterUsage<T>(fn: () => Promise<T>, usage: Usage = { ...NO_USAGE }): Promise<{ result: T; usage: Usage }> {
  const outer = current.getStore();
  try {
    const result = await current.run(usage, fn);
    return { result, usage };
  } finally {
    if (outer) addInto(outer, usage);
  }
}

/** The sum of two usages (`modelSeconds` kept where either has it). */
export function addUsage(a: Usage, b: Partial<Usage>): Usage {
  const sum = { ...a };
  addInto(sum, b);
  return sum;
}

function addInto(into: Usage, u: Partial<Usage>): void {
  into.requests += u.requests ?? 0;
  into.promptTokens += u.promptTokens ?? 0;
  into.completionTokens += u.completionTokens ?? 0;
  into.seconds += u.seconds ?? 0;
  if (u.modelSeconds !== undefined) into.modelSeconds = (into.modelSeconds ?? 0) + u.modelSeconds;
}

/** The sum of phase costs, phase by phase. */
export function addPhaseCost(a: PhaseCost, b: PhaseCost): PhaseCost {
  const sum: PhaseCost = { ...a };
  for (const [phase, u] of Object.entries(b) as [keyof PhaseCost, Usage | undefined][]) {
    if (u) sum[phase] = addUsage(sum[phase] ?? NO_USAGE, u);
  }
  return sum;
}
