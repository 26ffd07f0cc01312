/**
 * What the embedded model's calls cost, counted the way `pop serve` counts its replies (the tiny
 * model's tokens are words, with its special tokens): one request per call, the tokens it read
 * and generated, and its compute time (all of the call's time on the thread it runs on).
 */
import { reportUsage } from "../usage.ts";
import { answerIds, questionIds } from "./vocab.ts";

/** Tokens of a prompt as the model reads it: <bos>, the question's words (as many as it keeps), <sep>. */
export const promptTokenCount = (question: string) => questionIds(question).length + 2;
/** Tokens of an answer as the model generates or reads it: its words (as many as it keeps) and <eos>. */
export const answerTokenCount = (answer: string) => answerIds(answer).length + 1;

/** Reports one call that started at `t0` (performance.now()). */
export function reportTinyCall(t0: number, promptTokens: number, completionTokens: number): void {
  const s = (performance.now() - t0) / 1000;
  reportUsage({ requests: 1, promptTokens, completionTokens, seconds: s, modelSeconds: s });
}
