/**
 * The chat-completion bodies the server sends, in the shape vLLM sends them: judge replies as
 * one score digit per choice, or one `criterion: digit` line per criterion, with the digits'
 * log-probs; answers as the model wrote them, with each token's log-prob. Every reply is first a
 * {@link Reply} (its text, tokens and why it ended), cut at `stop` strings, then a choice.
 */
import { randomUUID } from "node:crypto";
import type { Criterion } from "../../protocol/mod.ts";
import type { GeneratedAnswer } from "../models/contract.ts";
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

/** One token of a reply with its alternatives, as `logprobs.content` lists it. */
export type ReplyToken = TokenLogprob & { top_logprobs: TokenLogprob[] };

/** A reply before it is a choice: its text, its tokens (they concatenate to the text) and why it ended. */
export interface Reply {
  content: string;
  /** Null when the model did not report its tokens (then `logprobs` cannot be answered). */
  tokens: ReplyToken[] | null;
  /** "length": the reply was cut at `max_tokens` (or the model's own limit). */
  finish: "stop" | "length";
}

/** One choice of a chat completion. */
export interface Choice {
  index: number;
  message: { role: "assistant"; content: string };
  logprobs: { content: ReplyToken[] } | null;
  finish_reason: "stop" | "length";
}

const entry = (token: string, logprob: number): TokenLogprob => ({ token, logprob: Math.max(FLOOR, logprob), bytes: [...Buffer.from(token)] });

/**
 * A reply cut where one of `stop` first appears (the stop string left out; finish "stop"), as
 * OpenAI cuts it. The tokens kept are those that begin before the cut, so the one that completed
 * the stop string is reported, as vLLM reports it.
 */
export function cutAtStop(reply: Reply, stop: string[]): Reply {
  const at = Math.min(...stop.map((s) => reply.content.indexOf(s)).filter((i) => i >= 0));
  if (!Number.isFinite(at)) return reply;
  let start = 0;
  const tokens = reply.tokens?.filter((t) => {
    const begins = start;
    start += t.token.length;
    return begins < at;
  });
  return { content: reply.content.slice(0, at), tokens: tokens ?? null, finish: "stop" };
}

/** The choices of `replies`: cut at the request's stop strings, with log-probs when asked for. */
export function choicesOf(replies: Reply[], settings: Pick<ChatSettings, "stop" | "logprobs">): Choice[] {
  return replies.map((r, index) => {
    const cut = settings.stop.length ? cutAtStop(r, settings.stop) : r;
    return {
      index,
      message: { role: "assistant", content: cut.content },
      logprobs: settings.logprobs ? { content: cut.tokens ?? [] } : null,
      finish_reason: cut.finish,
    };
  });
}

const digitEntry = (score: number, logprobs: number[]): TokenLogprob => entry(String(score), logprobs[score - 1]!);

/**
 * The score (1..5) each of the `n` choices writes, given the log-probs of 1..5: the most likely
 * score at temperature 0, else a draw from softmax(logprobs / temperature) from a stream seeded
 * by (seed, choice index), so a seeded request always gets the same digits.
 */
export function sampleScores(logprobs: number[], settings: Pick<ChatSettings, "n" | "temperature" | "seed"> & { topP?: number }, stream?: string): number[] {
  const best = logprobs.reduce((b, lp, i) => (lp > logprobs[b]! ? i : b), 0);
  if (settings.temperature <= 0) return Array.from({ length: settings.n }, () => best + 1);
  const max = logprobs[best]!;
  const weights = logprobs.map((lp) => Math.exp((lp - max) / settings.temperature));
  if (settings.topP !== undefined && settings.topP < 1) nucleus(weights, settings.topP);
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

/** Zeroes the weights outside the smallest likeliest set holding `topP` of their mass (the likeliest always stays). */
function nucleus(weights: number[], topP: number): void {
  const total = weights.reduce((a, b) => a + b, 0);
  const order = weights.map((_, i) => i).sort((a, b) => weights[b]! - weights[a]! || a - b);
  let kept = 0;
  order.forEach((i, rank) => {
    if (rank > 0 && kept >= topP * total) weights[i] = 0;
    else kept += weights[i]!;
  });
}

/**
 * Replies of a judge request. Log-probs are the model's raw ones (temperature 1) whatever the
 * sampling temperature, as vLLM reports them; only the five score digits are known, so at most
 * five alternatives are listed however many `top_logprobs` asks for.
 */
export function judgeReplies(logprobs: number[], settings: ChatSettings): Reply[] {
  const ranked = [1, 2, 3, 4, 5].sort((a, b) => logprobs[b - 1]! - logprobs[a - 1]!);
  const reply = (score: number): Reply => ({
    content: String(score),
    tokens: [{ ...digitEntry(score, logprobs), top_logprobs: ranked.slice(0, settings.topLogprobs).map((s) => digitEntry(s, logprobs)) }],
    finish: "stop",
  });
  // One token: a max_tokens of 1 or more always holds it.
  return sampleScores(logprobs, settings).map(reply);
}

/**
 * Replies of a judge request in lines (`criterion: digit`, one line per criterion in the order
 * asked), with `logprobs[i]` the log-probs of 1..5 for `criteria[i]`. Each digit is reported as
 * {@link judgeChoices} reports a lone one; the other tokens (the name, ":", " ", the newline) are
 * certain (log-prob 0). A reply over `maxTokens` tokens is cut there, as a real server cuts it.
 */
export function judgeLineReplies(criteria: Criterion[], logprobs: number[][], settings: ChatSettings): Reply[] {
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
    return { content: tokens.map((t) => t.token).join(""), tokens, finish: cut ? "length" : "stop" };
  });
}

/** Replies of a question, from answers with their tokens: each token's alternatives cut to `top_logprobs`. */
export function answerReplies(answers: GeneratedAnswer[], settings: Pick<ChatSettings, "topLogprobs">): Reply[] {
  return answers.map((a) => ({
    content: a.text,
    tokens: a.tokens.map((t) => ({ ...entry(t.token, t.logprob), top_logprobs: t.top.slice(0, settings.topLogprobs).map((x) => entry(x.token, x.logprob)) })),
    finish: a.finish,
  }));
}

/**
 * Replies of a question from a model that reports only text: no tokens, and "length" when the
 * reply has as many words (the tiny model's tokens) as `max_tokens` allowed.
 */
export function plainAnswerReplies(answers: string[], settings: Pick<ChatSettings, "maxTokens">): Reply[] {
  return answers.map((content) => ({
    content,
    tokens: null,
    finish: settings.maxTokens !== undefined && wordCount(content) >= settings.maxTokens ? "length" : "stop",
  }));
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
