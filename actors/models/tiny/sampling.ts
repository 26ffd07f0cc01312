/**
 * The tiny decoder's choice of the next token from one row of logits: greedy at temperature 0,
 * else a draw from softmax(logits / temperature), optionally cut to the nucleus (top-p), never a
 * banned token. Also what `pop serve` reports of each step: the chosen token's log-prob and the
 * most likely alternatives, both under the model's own distribution (temperature 1, banned
 * tokens excluded), as vLLM reports raw log-probs whatever the sampling settings.
 */
import type { Rng } from "../../random/rng.ts";
import { EOS } from "./vocab.ts";

/** How a row is sampled. */
export interface StepSampling {
  temperature: number;
  /** Nucleus mass in (0, 1]; absent or 1 = the whole distribution (the draw is then unchanged by it). */
  topP?: number;
  banned: ReadonlySet<number>;
}

/** The token id chosen from `row` (one position's logits over the vocabulary). */
export function pickToken(row: ArrayLike<number>, s: StepSampling, rng: Rng): number {
  const V = row.length;
  if (s.temperature <= 0) {
    let best = -Infinity;
    let choice = -1;
    for (let v = 0; v < V; v++)
      if (!s.banned.has(v) && row[v]! > best) {
        best = row[v]!;
        choice = v;
      }
    return choice;
  }
  let mx = -Infinity;
  for (let v = 0; v < V; v++) if (!s.banned.has(v)) mx = Math.max(mx, row[v]!);
  const pr = new Float64Array(V);
  let z = 0;
  for (let v = 0; v < V; v++)
    if (!s.banned.has(v)) {
      pr[v] = Math.exp((row[v]! - mx) / s.temperature);
      z += pr[v]!;
    }
  if (s.topP !== undefined && s.topP < 1) z = keepNucleus(pr, z, s.topP);
  let u = rng.next() * z;
  for (let v = 0; v < V; v++) {
    u -= pr[v]!;
    if (u < 0 && pr[v]! > 0) return v;
  }
  return EOS;
}

/** Zeroes every weight outside the smallest most-likely set holding `topP` of the mass; returns the mass kept. */
function keepNucleus(pr: Float64Array, z: number, topP: number): number {
  const order = [...pr.keys()].filter((v) => pr[v]! > 0).sort((a, b) => pr[b]! - pr[a]! || a - b);
  let kept = 0;
  let i = 0;
  // The most likely token is always kept, however small topP is.
  for (; i < order.length && (i === 0 || kept < topP * z); i++) kept += pr[order[i]!]!;
  for (; i < order.length; i++) pr[order[i]!] = 0;
  return kept;
}

/** A token's log-prob under the model's distribution, and the `top` most likely tokens there (ids, best first). */
export function stepLogprobs(row: ArrayLike<number>, banned: ReadonlySet<number>, chosen: number, top: number): { logprob: number; top: [number, number][] } {
  const V = row.length;
  let mx = -Infinity;
  for (let v = 0; v < V; v++) if (!banned.has(v)) mx = Math.max(mx, row[v]!);
  let z = 0;
  for (let v = 0; v < V; v++) if (!banned.has(v)) z += Math.exp(row[v]! - mx);
  const lse = mx + Math.log(z);
  const lp = (v: number) => row[v]! - lse;
  const ranked: [number, number][] = [];
  if (top > 0) {
    for (let v = 0; v < V; v++) if (!banned.has(v)) ranked.push([v, lp(v)]);
    ranked.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  }
  return { logprob: lp(chosen), top: ranked.slice(0, top) };
}
