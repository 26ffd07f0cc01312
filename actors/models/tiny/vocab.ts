/** The tiny model's word-level vocabulary and tokenisation (prompt, answer and judge layouts). */
import { CRITERIA, type Criterion } from "../../../protocol/mod.ts";
import { FILLER_WORDS } from "./criteria.ts";
import { COLORS, GLYPHS, NUMBERS, QUESTION_WORDS, SHAPES } from "./world.ts";

export const SPECIALS = ["<pad>", "<bos>", "<sep>", "<eos>", "<judge>", "<unk>"] as const;
export const PAD = 0,
  BOS = 1,
  SEP = 2,
  EOS = 3,
  JUDGE = 4,
  UNK = 5;
export const CRIT_TOKENS = CRITERIA.map((c) => `<${c}>`);
export const SCORE_TOKENS = ["<s1>", "<s2>", "<s3>", "<s4>", "<s5>"];

/** Vocabulary in id order (specials, criteria, scores, then words). */
export const VOCAB: string[] = (() => {
  const words = [...QUESTION_WORDS, ...COLORS, ...SHAPES, ...NUMBERS, ...GLYPHS, "yes", "no", "left", "right", "above", "below", ...FILLER_WORDS];
  const out: string[] = [...SPECIALS, ...CRIT_TOKENS, ...SCORE_TOKENS];
  for (const w of words) if (!out.includes(w)) out.push(w);
  return out;
})();
export const CRIT0 = SPECIALS.length;
export const SCORE0 = CRIT0 + CRIT_TOKENS.length;
const INDEX = new Map(VOCAB.map((w, i) => [w, i]));

/** Max question words; prompt layout is [<pad>.. <bos> q <sep>] of length {@link PROMPT_LEN}. */
export const MAX_QUESTION = 12;
export const PROMPT_LEN = MAX_QUESTION + 2;
/** Max answer words (longer answers are cut); answers are followed by <eos>. */
export const MAX_ANSWER = 5;
export const ANSWER_LEN = MAX_ANSWER + 1;
/**
 * Judge layout: the answer sequence (prompt, answer, <eos>) then <judge>, right-padded to
 * JUDGE_LEN; the criterion token follows <judge> and the score token follows it. It shares its
 * prefix with the answer sequence, so one pass over it gives an answer's log-prob and the
 * member's judgement of it (SimPO with the judge anchor runs one pass, not two).
 */
export const JUDGE_LEN = PROMPT_LEN + ANSWER_LEN + 1;
export const words = (s: string) => s.toLowerCase().split(/\s+/).filter(Boolean);
export const tokenId = (w: string) => INDEX.get(w) ?? UNK;
/** A word of text (a question, a peer's answer): special-token spellings are read as unknown, never as control tokens. */
const textId = (w: string) => (w.startsWith("<") ? UNK : tokenId(w));
export const critToken = (c: Criterion) => CRIT0 + CRITERIA.indexOf(c);

/** Left-pad `ids` to `len` (keeping the tail when too long). */
function leftPad(ids: number[], len: number): number[] {
  const t = ids.slice(Math.max(0, ids.length - len));
  return [...new Array(len - t.length).fill(PAD), ...t];
}

export function questionIds(q: string): number[] {
  return words(q).slice(0, MAX_QUESTION).map(textId);
}
export function answerIds(a: string): number[] {
  return words(a).slice(0, MAX_ANSWER).map(textId);
}
/** Prompt tokens, left-padded to PROMPT_LEN. */
export function promptTokens(q: string): number[] {
  return leftPad([BOS, ...questionIds(q), SEP], PROMPT_LEN);
}
/** Prompt + answer + <eos> + right padding (length PROMPT_LEN + ANSWER_LEN) and the answer length incl. <eos>. */
export function answerSequence(q: string, a: string): { tokens: number[]; len: number } {
  const ans = [...answerIds(a), EOS];
  const tokens = [...promptTokens(q), ...ans];
  while (tokens.length < PROMPT_LEN + ANSWER_LEN) tokens.push(PAD);
  return { tokens, len: ans.length };
}
/** Judge sequence tokens (right-padded to JUDGE_LEN), the position of <judge> and the answer length incl. <eos>. */
export function judgeSequence(q: string, a: string): { tokens: number[]; at: number; len: number } {
  const { tokens, len } = answerSequence(q, a);
  const at = PROMPT_LEN + len;
  const out = [...tokens.slice(0, at), JUDGE];
  while (out.length < JUDGE_LEN) out.push(PAD);
  return { tokens: out, at, len };
}
/** Ids that generation may never emit (everything special except <eos>). */
export const BANNED_IN_ANSWERS = VOCAB.map((_, i) => i).filter((i) => i !== EOS && VOCAB[i]!.startsWith("<"));
export function detokenize(ids: number[]): string {
  return ids.map((i) => VOCAB[i] ?? "<unk>").join(" ");
}
