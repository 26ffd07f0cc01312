/**
 * Reading the five scores of a single-mode judge reply (./rubric.ts's judgeAllPrompt asks for one
 * `criterion: digit` line each). Where the server returns `top_logprobs`, a criterion's score is
 * the expected value over the digits 1–5 at the digit that follows its name (as ./score.ts reads
 * a one-digit reply); otherwise, or where that position's alternatives hold no digit, the number
 * after its name in the text, if it lies in 1..5. A criterion found neither way is missing: the
 * caller asks for it alone.
 */
import type { Criterion } from "../../../protocol/mod.ts";
import { digitScore, isScoreDigit } from "./score.ts";
import type { Choice } from "./wire.ts";

/** A criterion's score and where it was read from. */
export type LineReading = { score: number; from: "logprobs" | "text" };

/** What a reply gave: the criteria read, and why each of the others was not. */
export interface LinesReading {
  scores: Partial<Record<Criterion, LineReading>>;
  missing: Partial<Record<Criterion, string>>;
}

/**
 * The start of a line up to a criterion's score: list markers and Markdown emphasis around the
 * name are allowed ("- **Correctness**: 4", "2. coherence = 3"), anything else is not, so that
 * "helpfulness (1-5): 4" does not read the 1 of the range.
 */
const LABEL = /^[\s>#*-]*(?:\d+[.)]\s+)?[*_]*([A-Za-z]+)[*_]*\s*[:=\-–—]?\s*[*_]*\s*$/;

/** The criterion a line's text before a score names, if it is one of `criteria`. */
function labelOf(prefix: string, criteria: readonly Criterion[]): Criterion | undefined {
  const name = LABEL.exec(prefix)?.[1]?.toLowerCase();
  return criteria.find((c) => c === name);
}

/** The scores of `criteria` in `choice`; `temperature` sharpens each digit distribution (1: as the model gives it). */
export function readScoreLines(choice: Choice, criteria: readonly Criterion[], temperature = 1): LinesReading {
  const scores: LinesReading["scores"] = {};
  // From the log-probs: each digit token whose line so far names a criterion not yet read.
  let line = "";
  for (const t of choice.logprobs?.content ?? []) {
    if (isScoreDigit(t.token)) {
      const c = labelOf(line, criteria);
      if (c && !scores[c]) {
        const score = digitScore(t, temperature);
        if (score !== undefined) scores[c] = { score, from: "logprobs" };
      }
    }
    line += t.token;
    const nl = line.lastIndexOf("\n");
    if (nl >= 0) line = line.slice(nl + 1);
  }
  // From the text, for what the log-probs did not give: the first number on a line after a criterion's name.
  const missing: LinesReading["missing"] = {};
  const text = choice.message.content ?? "";
  for (const l of text.split("\n")) {
    for (const m of l.matchAll(/(?<![\d.])\d+(?:\.\d+)?/g)) {
      const c = labelOf(l.slice(0, m.index), criteria);
      if (!c) continue;
      const v = Number(m[0]);
      if (!scores[c] && missing[c] === undefined) {
        if (v >= 1 && v <= 5) scores[c] = { score: v, from: "text" };
        else missing[c] = `the reply gives ${c} ${m[0]}, outside 1..5`;
      }
      break;
    }
  }
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
  for (const c of criteria) if (!scores[c] && missing[c] === undefined) missing[c] = `reply ${shown} holds no ${c} score`;
  return { scores, missing };
}
