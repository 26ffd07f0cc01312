/**
 * Reading a 1–5 score from a judge's distribution over the five score tokens: the expected
 * score under the distribution sharpened by a temperature (1: the model's own, towards 0: its
 * most likely score). Every backend that reads scores from log-probs uses this one function.
 */

/**
 * Expected score from natural-log probabilities of the scores 1..5 (`logprobs[i]` for score
 * i + 1; a missing score is `-Infinity` or undefined). Temperature 0 gives the most likely score.
 * Returns undefined when no score has a probability.
 */
export function expectedScore(logprobs: readonly (number | undefined)[], temperature: number): number | undefined {
  const lp = [0, 1, 2, 3, 4].map((i) => logprobs[i] ?? -Infinity);
  const mx = Math.max(...lp);
  if (!Number.isFinite(mx)) return undefined;
  if (temperature <= 0) return lp.indexOf(mx) + 1;
  let z = 0,
    e = 0;
  for (let k = 0; k < 5; k++) {
    const p = Math.exp((lp[k]! - mx) / temperature);
    z += p;
    e += (k + 1) * p;
  }
  return e / z;
}
