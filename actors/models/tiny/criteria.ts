/**
 * What the five judging criteria mean in the tiny world, and the synthetic candidates a member
 * learns to judge from during pretraining (labels come from the world's ground truth).
 *
 * An answer to a question is put in one category (see {@link classifyAnswer}):
 * - `correct`   exactly the right tokens;
 * - `verbose`   the right answer plus extra tokens ("it is red", "red red");
 * - `partial`   a strict non-empty prefix of a multi-token answer (part of the glyph string);
 * - `wrong`     a well-formed answer of the asked type (same word class, same length for text)
 *               that contradicts the image;
 * - `wrongtype` an answer of another type ("yes" to "what color ...", a colour for a count);
 * - `malformed` anything else: empty, mixed word classes, wrong length, junk.
 *
 * Criteria, 1–5 (the score table is {@link CRITERIA_SCORES}):
 * - helpfulness: gives the asker what they need — right and to the point (5), right but padded
 *   (4), only part (2), otherwise nothing useful (1);
 * - correctness: what it says matches the image — fully (5), partly (2), not (1);
 * - coherence:   a well-formed answer of the asked type — right (5), padded or partial but
 *   well-formed (4), well-formed but contradicting the image (2), wrong type or junk (1);
 * - complexity:  completeness — the whole answer (the whole glyph string, not part of it) (5),
 *   part (2), none (1);
 * - verbosity:   says what is needed and no more — no extra tokens (5), partial (4), wrong
 *   or padded (2), junk (1).
 * A correct answer thus scores (5,5,5,5,5) → R = 1; verbose 0.75; partial 0.45; wrong 0.1;
 * wrong type 0.05; malformed 0.
 */
import { CRITERIA, type Criterion, type LikertScores } from "../../../protocol/mod.ts";
import type { Rng } from "../../random/rng.ts";
import { answerWords, FAMILIES, type Family } from "./world.ts";

export const CATEGORIES = ["correct", "verbose", "partial", "wrong", "wrongtype", "malformed"] as const;
export type Category = (typeof CATEGORIES)[number];

/** Scores per category, in {@link CRITERIA} order (helpfulness, correctness, coherence, complexity, verbosity). */
export const CRITERIA_SCORES: Record<Category, readonly [number, number, number, number, number]> = {
  correct: [5, 5, 5, 5, 5],
  verbose: [4, 5, 4, 5, 2],
  partial: [2, 2, 4, 2, 4],
  wrong: [1, 1, 2, 1, 2],
  wrongtype: [1, 1, 1, 1, 2],
  malformed: [1, 1, 1, 1, 1],
};

/** Ground-truth Likert scores of an answer (the world's oracle judge, for labels and analysis). */
export function oracleScores(family: Family, truth: string, answer: string): LikertScores {
  const s = CRITERIA_SCORES[classifyAnswer(family, truth, answer)];
  return Object.fromEntries(CRITERIA.map((c, i) => [c, s[i]])) as LikertScores;
}

const words = (s: string) => s.split(/\s+/).filter(Boolean);

/** Category of `answer` to a question of `family` whose exact answer is `truth`. */
export function classifyAnswer(family: Family, truth: string, answer: string): Category {
  const t = words(truth);
  const a = words(answer);
  if (a.join(" ") === t.join(" ")) return "correct";
  if (!a.length) return "malformed";
  // the right answer appearing contiguously inside a longer answer
  for (let i = 0; i + t.length <= a.length; i++) {
    if (a.slice(i, i + t.length).join(" ") === t.join(" ") && a.length > t.length) return "verbose";
  }
  const own = new Set(answerWords(family));
  if (t.length > 1 && a.length < t.length && a.every((w, i) => w === t[i])) return "partial";
  if (a.length === t.length && a.every((w) => own.has(w))) return "wrong";
  for (const f of FAMILIES) {
    if (f === family) continue;
    const other = new Set(answerWords(f));
    if (a.every((w) => other.has(w)) && (f === "ocr" ? a.length >= 2 && a.length <= 3 : a.length === 1)) return "wrongtype";
  }
  return "malformed";
}

/** Every word a candidate may contain (answer words of all families plus padding words). */
export const FILLER_WORDS = ["it", "is", "the"] as const;

/** Probability of each category when synthesising judge training candidates. */
export const CANDIDATE_MIX: Record<Category, number> = {
  correct: 0.4,
  verbose: 0.1,
  partial: 0.05,
  wrong: 0.3,
  wrongtype: 0.08,
  malformed: 0.07,
};

/** A synthetic candidate answer of a category for (family, truth); may fall back to "wrong". */
export function synthCandidate(family: Family, truth: string, category: Category, rng: Rng): string {
  const t = words(truth);
  const own = answerWords(family);
  switch (category) {
    case "correct":
      return truth;
    case "verbose":
      return rng.next() < 0.5 ? ["it", "is", ...t].slice(0, 5).join(" ") : [...t, t[t.length - 1]!].join(" ");
    case "partial":
      if (t.length > 1) return t.slice(0, 1 + rng.int(t.length - 1)).join(" ");
      return synthCandidate(family, truth, "wrong", rng);
    case "wrong": {
      for (;;) {
        const a = t.length > 1 ? t.map((w) => (rng.next() < 0.5 ? rng.pick(own) : w)) : [rng.pick(own)];
        if (a.join(" ") !== truth) return a.join(" ");
      }
    }
    case "wrongtype": {
      const f = rng.pick(FAMILIES.filter((x) => x !== family));
      const ow = answerWords(f);
      return (f === "ocr" ? Array.from({ length: 2 + rng.int(2) }, () => rng.pick(ow)) : [rng.pick(ow)]).join(" ");
    }
    case "malformed": {
      if (rng.next() < 0.2) return "";
      const all = FAMILIES.flatMap((f) => answerWords(f));
      for (;;) {
        const a = Array.from({ length: 1 + rng.int(4) }, () => rng.pick(rng.next() < 0.2 ? FILLER_WORDS : all)).join(" ");
        if (classifyAnswer(family, truth, a) === "malformed") return a;
      }
    }
  }
}

/** Draw a category from {@link CANDIDATE_MIX}. */
export function drawCategory(rng: Rng): Category {
  let u = rng.next();
  for (const c of CATEGORIES) {
    u -= CANDIDATE_MIX[c];
    if (u < 0) return c;
  }
  return "correct";
}

/** Scores as an array in criteria order. */
export function scoresArray(s: LikertScores): number[] {
  return CRITERIA.map((c: Criterion) => s[c]);
}
