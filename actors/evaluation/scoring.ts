/**
 * How a benchmark item's reply is scored: exact match on normalised text, or multiple choice
 * read as an option letter. Pure functions, no model, no files.
 */

/** Quotes a reply may be wrapped in (straight and typographic). */
const QUOTES = `"'\`\u2018\u2019\u201c\u201d`;
/**
 * Trailing punctuation dropped before comparing. `?` is not in it: a reply that ends in a
 * question mark asks back rather than answers, and keeping it makes this rule agree exactly with
 * the tiny model's own word-level scoring (actors/models/tiny/evaluate.ts), which can emit `?`.
 */
const TRAILING = ".!,;:";

/**
 * Normal form for exact match: lower-case, whitespace runs collapsed to one space, then
 * surrounding quotes and trailing `.` `!` `,` `;` `:` stripped, repeatedly, so `"Paris."`,
 * `'paris'` and `  PARIS! ` all read `paris`. Inner punctuation stays (`3.5`, `e.g. x`).
 */
export function normaliseAnswer(text: string): string {
  let s = text.toLowerCase().replace(/\s+/g, " ").trim();
  for (;;) {
    const before = s;
    while (s && TRAILING.includes(s[s.length - 1]!)) s = s.slice(0, -1).trimEnd();
    if (s.length >= 2 && QUOTES.includes(s[0]!) && QUOTES.includes(s[s.length - 1]!)) s = s.slice(1, -1).trim();
    if (s === before) return s;
  }
}

/** True when the reply equals the expected answer after {@link normaliseAnswer} on both sides. */
export function exactMatch(reply: string, answer: string): boolean {
  return normaliseAnswer(reply) === normaliseAnswer(answer);
}

/** Letter of option `index` (0 -> `A`). */
export const optionLetter = (index: number): string => String.fromCharCode(65 + index);

/** At most this many options: one per letter. */
export const MAX_CHOICES = 26;

/** The instruction LLaVA-style evaluations append to a multiple-choice question. */
export const CHOICE_INSTRUCTION = "Answer with the option's letter from the given choices directly.";

/**
 * The prompt of a multiple-choice item: the question, then one option per line as `A. text`,
 * then {@link CHOICE_INSTRUCTION} (the convention of LLaVA's MMBench/ScienceQA evaluation, so
 * models tuned on it answer with a bare letter).
 */
export function choicePrompt(question: string, choices: readonly string[]): string {
  return [question.trim(), ...choices.map((c, i) => `${optionLetter(i)}. ${c.trim()}`), CHOICE_INSTRUCTION].join("\n");
}

/**
 * The option a reply picks, as a 0-based index, or undefined when it picks none (or a letter
 * past the last option). Read in this order, first match wins:
 * 1. a leading letter: the whole reply `B` (either case), or `B.` `B)` `B:` `(B)` followed by
 *    anything (`B. Paris`). An upper-case letter must be followed by punctuation or nothing, so
 *    a sentence opening with the article `A` is not read as option A.
 * 2. `Answer: B`, `answer is B`, `The answer is (B).` anywhere in the reply, the letter upper-case
 *    and not starting a longer word.
 * 3. the whole reply equal to one option's text under {@link normaliseAnswer}.
 * Everything else (refusals, two letters run together, prose) picks nothing and scores wrong.
 */
export function readChoice(reply: string, choices: readonly string[]): number | undefined {
  const inRange = (letter: string | undefined) => {
    if (!letter) return undefined;
    const i = letter.toUpperCase().charCodeAt(0) - 65;
    return i >= 0 && i < choices.length ? i : undefined;
  };
  const s = reply.trim();
  const bare = /^[([]?([A-Za-z])[)\].:]?$/.exec(s);
  if (bare) return inRange(bare[1]);
  const leading = /^(?:\(([A-Z])\)|([A-Z])[.):])/.exec(s);
  if (leading) return inRange(leading[1] ?? leading[2]);
  const stated = /\b[Aa]nswer(?:\s+is)?\s*:?\s*[([]?([A-Z])(?![A-Za-z0-9])/.exec(s);
  if (stated) return inRange(stated[1]);
  const text = normaliseAnswer(s);
  const hit = choices.findIndex((c) => normaliseAnswer(c) === text);
  return hit >= 0 ? hit : undefined;
}

/** True when the reply picks option `answer` (0-based). */
export function choiceMatch(reply: string, choices: readonly string[], answer: number): boolean {
  return readChoice(reply, choices) === answer;
}

/** What a benchmark item expects: an exact-match text, or the options and the index of the right one. */
export type Expected = { text: string } | { choices: string[]; index: number };

/**
 * True when `reply` is right for `expected`: {@link exactMatch} for a text, {@link choiceMatch}
 * for options. The one grading rule: benchmark files and the report's pair precision both use it.
 */
export function gradeReply(reply: string, expected: Expected): boolean {
  return "text" in expected ? exactMatch(reply, expected.text) : choiceMatch(reply, expected.choices, expected.index);
}
