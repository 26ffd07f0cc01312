/**
 * The chat-completion bodies the server sends, in the shape vLLM sends them: judge replies as
 * one score digit per choice, or one `criterion: digit` line per criterion, with the digits'
 * log-probs; answers as plain text.
 */
import { randomUUID } from "node:crypto";
import type { Criterion } from "../../protocol/mod.ts";
import { hashSeed, makeRng } from "../random/rng.ts";
import type { ChatSettings } from "./request.ts";
import { wordCount } from "./request.ts";

/** What vLLM reports for a log-prob of minus infinity (JSON has no infinities). */
const FLOOR = -9999;

/** One token's log-prob entry of OpenAI's `logprobs.content`. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

/** One choice of a chat completion. */
export interface Choice {
  index: number;
  message: { role: "assistant"; content: string };
  logprobs: { content: (TokenLogprob & { top_logprobs: TokenLogprob[] })[] } | null;
  /** "length": the reply was cut at `max_tokens`. */
  finish_reason: "stop" | "length";
}

const digitEntry = (score: number, logprobs: number[]): TokenLogprob => {
  const token = String(score);
  return { token, logprob: Math.max(FLOOR, logprobs[score - 1]!), bytes: [...Buffer.from(token)] };
};

/**
 * The score (1..5) each of the `n` choices writes, given the log-probs of 1..5: the most likely
 * score at temperature 0, else a draw from softmax(logprobs / temperature) from a stream seeded
 * by (seed, choice index), so a seeded request always gets the same digits.
 */
export function sampleScores(logprobs: number[], settings: Pick<ChatSettings, "n" | "temperature" | "seed">, stream?: string): number[] {
  const best = logprobs.reduce((b, lp, i) => (lp > logprobs[b]! ? i : b), 0);
  if (settings.temperature <= 0) return Array.from({ length: settings.n }, () => best + 1);
  const max = logprobs[best]!;
  const weights = logprobs.map((lp) => Math.exp((lp - max) / settings.temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  return Array.from({ length: settings.n }, (_, i) => {
    // A reply with several scores draws each from a stream of its own (`stream`: the criterion).
    let u = makeRng(stream === undefined ? hashSeed("serve-judge", settings.seed, i) : hashSeed("serve-judge", settings.seed, i, stream)).next() * total;
    for (let k = 0; k < 5; k++) {
      u -= weights[k]!;
      if (u < 0) return k + 1;
    }
    return best + 1;
  });
}

/**
 * Choices of a judge reply. Log-probs are the model's raw ones (temperature 1) whatever the
 * sampling temperature, as vLLM reports them; only the five score digits are known, so at most
 * five alternatives are listed however many `top_logprobs` asks for.
 */
export function judgeChoices(logprobs: number[], settings: ChatSettings): Choice[] {
  const ranked = [1, 2, 3, 4, 5].sort((a, b) => logprobs[b - 1]! - logprobs[a - 1]!);
  return sampleScores(logprobs, settings).map((score, index) => ({
    index,
    message: { role: "assistant", content: String(score) },
    logprobs: settings.logprobs
      ? { content: [{ ...digitEntry(score, logprobs), top_logprobs: ranked.slice(0, settings.topLogprobs).map((s) => digitEntry(s, logprobs)) }] }
      : null,
    finish_reason: "stop",
  }));
}

/**
 * Choices of a judge reply in lines (`criterion: digit`, one line per criterion in the order
 * asked), with `logprobs[i]` the log-probs of 1..5 for `criteria[i]`. Each digit is reported as
 * {@link judgeChoices} reports a lone one; the other tokens (the name, ":", " ", the newline) are
 * certain (log-prob 0). A reply over `maxTokens` tokens is cut there, as a real server cuts it.
 */
export function judgeLineChoices(criteria: Criterion[], logprobs: number[][], settings: ChatSettings): Choice[] {
  const fixed = (token: string) => {
    const entry = { token, logprob: 0, bytes: [...Buffer.from(token)] };
    return { ...entry, top_logprobs: settings.topLogprobs > 0 ? [entry] : [] };
  };
  const ranked = logprobs.map((lp) => [1, 2, 3, 4, 5].sort((a, b) => lp[b - 1]! - lp[a - 1]!));
  const picks = criteria.map((c, i) => sampleScores(logprobs[i]!, settings, c));
  return Array.from({ length: settings.n }, (_, index) => {
    let tokens = criteria.flatMap((c, i) => {
      const score = picks[i]![index]!;
      const digit = { ...digitEntry(score, logprobs[i]!), top_logprobs: ranked[i]!.slice(0, settings.topLogprobs).map((s) => digitEntry(s, logprobs[i]!)) };
      return [...(i > 0 ? [fixed("\n")] : []), fixed(c), fixed(":"), fixed(" "), digit];
    });
    const cut = settings.maxTokens !== undefined && tokens.length > settings.maxTokens;
    if (cut) tokens = tokens.slice(0, settings.maxTokens);
    return {
      index,
      message: { role: "assistant", content: tokens.map((t) => t.token).join("") },
      logprobs: settings.logprobs ? { content: tokens } : null,
      finish_reason: cut ? "length" : "stop",
    };
  });
}

/** Choices of an answer reply (no log-probs: generation does not report them). */
export function answerChoices(answers: string[]): Choice[] {
  return answers.map((content, index) => ({ index, message: { role: "assistant", content }, logprobs: null, finish_reason: "stop" }));
}

/**
 * The whole `chat.completion` body. Token counts are word counts (the tiny model's tokens are
 * words); an empty answer counts one, for the end-of-answer token it still produced.
 */
export function completionBody(model: string, choices: Choice[], promptWords: number) {
  const completion = choices.reduce((sum, c) => sum + Math.max(1, wordCount(c.message.content)), 0);
  return {
    id: `chatcmpl-${randomUUID().replaceAll("-", "")}`,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices,
    usage: { prompt_tokens: promptWords, completion_tokens: completion, total_tokens: promptWords + completion },
  };
}
