/**
 * Reading a judge's 1–5 score from a chat completion. Where the server returns `top_logprobs`,
 * the score is the expected value over the digit tokens 1–5 at the first position that emitted
 * a digit (a real number, as the PoP paper's judges read it); otherwise the first number in the
 * reply's text, if it lies in 1..5. Anything else is unreadable: the caller retries, then abstains.
 */
import { expectedScore } from "../likert.ts";
import type { Choice } from "./wire.ts";

export type ScoreReading = { score: number; from: "logprobs" | "text" } | { unreadable: string };

const DIGIT = /^[1-5]$/;

/** The score in `choice`; `temperature` sharpens the digit distribution (1: as the model gives it). */
export function readScore(choice: Choice, temperature = 1): ScoreReading {
  const tokens = choice.logprobs?.content ?? [];
  const at = tokens.findIndex((t) => DIGIT.test(t.token.trim()));
  if (at >= 0) {
    const t = tokens[at]!;
    // Tokenisers spell a digit several ways ("4", " 4"); each spelling is its own token, so their probabilities add.
    const p = [0, 0, 0, 0, 0];
    const seen = new Set<string>();
    for (const c of [t, ...(t.top_logprobs ?? [])]) {
      if (seen.has(c.token) || !DIGIT.test(c.token.trim())) continue;
      seen.add(c.token);
      p[Number(c.token.trim()) - 1]! += Math.exp(c.logprob);
    }
    const score = expectedScore(
      p.map((x) => (x > 0 ? Math.log(x) : -Infinity)),
      temperature,
    );
    if (score !== undefined) return { score, from: "logprobs" };
  }
  return readScoreText(choice.message.content ?? "");
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
