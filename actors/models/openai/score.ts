/**
 * Reading a judge's 1–5 score from a chat completion. Where the server returns `top_logprobs`,
 * the score is the expected value over the digit tokens 1–5 at the first position that emitted
 * a digit (a real number, as the PoP paper's judges read it); otherwise the first number in the
 * reply's text, if it lies in 1..5. Anything else is unreadable: the caller retries, then abstains.
 */
import { expectedScore } from "../likert.ts";
import type { Choice, TokenLogprob } from "./wire.ts";

export type ScoreReading = { score: number; from: "logprobs" | "text" } | { unreadable: string };

/** A generated token that is a score digit (trimmed: tokenisers spell "4" and " 4" apart). */
export const isScoreDigit = (token: string) => /^[1-5]$/.test(token.trim());

/** The score in `choice`; `temperature` sharpens the digit distribution (1: as the model gives it). */
export function readScore(choice: Choice, temperature = 1): ScoreReading {
  const tokens = choice.logprobs?.content ?? [];
  const t = tokens.find((t) => isScoreDigit(t.token));
  if (t) {
    const score = digitScore(t, temperature);
    if (score !== undefined) return { score, from: "logprobs" };
  }
  return readScoreText(choice.message.content ?? "");
}

/** The expected score over the digits 1–5 among a generated digit's top_logprobs (undefined when none has a probability). */
export function digitScore(t: TokenLogprob, temperature: number): number | undefined {
  // Tokenisers spell a digit several ways ("4", " 4"); each spelling is its own token, so their probabilities add.
  const p = [0, 0, 0, 0, 0];
  const seen = new Set<string>();
  for (const c of [t, ...(t.top_logprobs ?? [])]) {
    if (seen.has(c.token) || !isScoreDigit(c.token)) continue;
    seen.add(c.token);
    p[Number(c.token.trim()) - 1]! += Math.exp(c.logprob);
  }
  return expectedScore(
    p.map((x) => (x > 0 ? Math.log(x) : -Infinity)),
    temperature,
  );
}

/** The first number in a reply, when it is a score from 1 to 5 ("4", "Score: 4", "4/5", "4.5"). */
export function readScoreText(text: string): ScoreReading {
  const m = /(?<![\d.])(\d+(?:\.\d+)?)/.exec(text);
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
  if (!m) return { unreadable: `reply ${shown} holds no score` };
  const v = Number(m[1]);
  if (v < 1 || v > 5) return { unreadable: `reply ${shown} gives ${m[1]}, outside 1..5` };
  return { score: v, from: "text" };
}
