/**
 * The judge's rubric: absolute 1–5 scoring with no reference answer (the scoring the PoP paper
 * found best), asked either for all five criteria at once ({@link judgeAllPrompt}: one line per
 * criterion, the experiment's "single" judging mode) or for one criterion ({@link judgePrompt}). The five criteria follow HelpSteer2's
 * attributes, written for questions about images, and are oriented so that 5 is always best,
 * because mean voting adds the normalised scores: for verbosity and complexity that means "as
 * much as the question needs", not "more".
 *
 * `pop serve` reads the same text back ({@link parseJudgePrompt}), so the tiny model behind it
 * judges exactly what a remote model is asked to judge.
 */
import { CRITERIA, type Criterion } from "../../../protocol/mod.ts";

/** What each criterion asks, and what 1 and 5 mean. */
export const RUBRIC: Record<Criterion, { asks: string; low: string; high: string }> = {
  helpfulness: {
    asks: "how well the answer gives the person who asked what they need, judged against the image",
    low: "useless, off-topic or misleading",
    high: "fully answers the question about the image, directly",
  },
  correctness: {
    asks: "whether what the answer states is true of the image, with nothing pertinent left out",
    low: "contradicts what the image shows",
    high: "everything it states matches the image and nothing needed is missing",
  },
  coherence: {
    asks: "whether the answer is clear, consistent and well-formed as a reply to this kind of question",
    low: "garbled, self-contradictory or not an answer of the asked kind",
    high: "clear, consistent, and of the kind the question asks for",
  },
  complexity: {
    asks: "whether the answer has the depth and completeness the question calls for (the whole answer, not part of it)",
    low: "gives none of what the question calls for",
    high: "complete, with exactly the depth the question needs",
  },
  verbosity: {
    asks: "whether the amount of detail fits what was asked: neither padded nor cut short",
    low: "far too long or too short for the question",
    high: "says what is needed and no more",
  },
};

const OPEN_Q = "<question>",
  CLOSE_Q = "</question>",
  OPEN_A = "<answer>",
  CLOSE_A = "</answer>";

/** A user's text must not close our tags early; a space inside the tag keeps it readable but inert. */
const neutralise = (s: string) => s.replace(/<(\/?)(question|answer)>/gi, "<$1 $2>");

/**
 * What every judge prompt starts with: the question and the answer. The criteria come after, so
 * the requests about one candidate (and, up to the answer, about one prompt) share a prefix that
 * a server's prefix cache serves; the prompt's images go before all of it.
 */
function judgeHead(question: string, answer: string): string[] {
  return [
    "You are judging an answer to a question about the image(s) above. Judge the answer on its own; there is no reference answer.",
    "",
    OPEN_Q,
    neutralise(question),
    CLOSE_Q,
    "",
    OPEN_A,
    neutralise(answer),
    CLOSE_A,
    "",
  ];
}

/** The judge's text for one candidate and criterion (the prompt's images go before it). */
export function judgePrompt(question: string, answer: string, criterion: Criterion): string {
  const r = RUBRIC[criterion];
  return [
    ...judgeHead(question, answer),
    `Criterion: ${criterion} — ${r.asks}.`,
    `Score 1 to 5: 1 = ${r.low}; 5 = ${r.high}.`,
    "Reply with a single digit from 1 to 5 and nothing else.",
  ].join("\n");
}

const ALL_INTRO = "Score the answer from 1 to 5 on each criterion:";

/**
 * The judge's text for one candidate on several criteria at once (all five, in the protocol's
 * order, unless told otherwise): the reply is one `criterion: digit` line per criterion, in that
 * order, which ./score-lines.ts reads.
 */
export function judgeAllPrompt(question: string, answer: string, criteria: readonly Criterion[] = CRITERIA): string {
  return [
    ...judgeHead(question, answer),
    ALL_INTRO,
    ...criteria.map((c) => `- ${c} — ${RUBRIC[c].asks}. 1 = ${RUBRIC[c].low}; 5 = ${RUBRIC[c].high}.`),
    "",
    `Reply with exactly these ${criteria.length} lines, in this order, with a single digit from 1 to 5 in place of N, and nothing else:`,
    ...criteria.map((c) => `${c}: N`),
  ].join("\n");
}

/** Sent after an unreadable reply, as a second user turn. */
export const JUDGE_REMINDER = "Your reply could not be read as a score. Reply with exactly one digit: 1, 2, 3, 4 or 5.";

/** What a judge prompt asks: the question, the answer, the criteria and the reply's form. */
export interface ParsedJudgePrompt {
  question: string;
  answer: string;
  /** In the order the reply gives them. */
  criteria: Criterion[];
  /** "digit": one digit ({@link judgePrompt}); "lines": a `criterion: digit` line each ({@link judgeAllPrompt}). */
  reply: "digit" | "lines";
}

const isCriterion = (c: string | undefined): c is Criterion => c !== undefined && (CRITERIA as readonly string[]).includes(c);

/** What a judge prompt asks, or undefined when `text` is not one. */
export function parseJudgePrompt(text: string): ParsedJudgePrompt | undefined {
  const q = between(text, OPEN_Q, CLOSE_Q);
  const a = between(text, OPEN_A, CLOSE_A);
  if (q === undefined || a === undefined) return undefined;
  // Only the text after the answer is ours to read: the question and the answer are the user's.
  const tail = text.slice(text.indexOf(`\n${CLOSE_A}`, text.indexOf(`${OPEN_A}\n`)));
  const one = /\nCriterion: ([a-z]+) — /.exec(tail)?.[1];
  if (isCriterion(one)) return { question: q, answer: a, criteria: [one], reply: "digit" };
  if (!tail.includes(`\n${ALL_INTRO}\n`)) return undefined;
  const listed = [...tail.matchAll(/^- ([a-z]+) — /gm)].map((m) => m[1]);
  if (listed.length === 0 || !listed.every(isCriterion) || new Set(listed).size !== listed.length) return undefined;
  return { question: q, answer: a, criteria: listed, reply: "lines" };
}

function between(text: string, open: string, close: string): string | undefined {
  const i = text.indexOf(`${open}\n`);
  const j = text.indexOf(`\n${close}`, i + open.length);
  if (i < 0 || j < 0) return undefined;
  return text.slice(i + open.length + 1, j);
}
