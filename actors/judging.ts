/** Judging: absolute 1–5 scores on the five criteria for every candidate of the peers' batches. */
import { PROTOCOL_VERSION, publishMessage, type Delivery, type MessageOf, type Outcome, type Verdict } from "../protocol/mod.ts";
import { judgeOnce } from "./backend/judge-once.ts";
import type { JudgeInput } from "./backend/types.ts";
import type { PeerContext } from "./context.ts";
import { ModelOutputError } from "./errors.ts";

export async function judgeCandidates(ctx: PeerContext, batch: Delivery<MessageOf<"candidates">>[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = batch.map(() => "ack");
  const todo: MessageOf<"candidates">[] = [];
  for (const d of batch) {
    const c = d.message;
    if (c.author === ctx.peer && !ctx.config.voting.selfJudging) continue;
    if (!(await ctx.takesPart(c.iteration))) continue;
    todo.push(c);
  }
  if (todo.length === 0) return outcomes;
  const items: JudgeInput[] = [];
  for (const c of todo) {
    const prompt = await ctx.promptInput(c.promptId, c.question, c.images);
    for (const cand of c.candidates) items.push({ prompt, answer: cand.text });
  }
  const t0 = performance.now();
  const scores = await judgeOnce(ctx.backend, items);
  let at = 0;
  for (const c of todo) {
    const verdict: Verdict = {
      v: PROTOCOL_VERSION,
      type: "verdict",
      experiment: ctx.experiment,
      iteration: c.iteration,
      promptId: c.promptId,
      judge: ctx.peer,
      author: c.author,
      modelVersion: ctx.modelVersion,
      scores: c.candidates.map((cand) => ({ candidateId: cand.candidateId, likert: clampLikert(scores[at++]!) })),
      createdAt: Date.now(),
    };
    await publishMessage(ctx.js, verdict);
  }
  ctx.log.debug({ batches: todo.length, candidates: items.length, ms: Math.round(performance.now() - t0) }, "judged candidates");
  return outcomes;
}

/** A judge must answer 1..5 on every criterion; anything else is a model fault, not a score. */
function clampLikert(s: Record<string, number>) {
  const out = {} as Verdict["scores"][number]["likert"];
  for (const k of ["helpfulness", "correctness", "coherence", "complexity", "verbosity"] as const) {
    const v = s[k];
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ModelOutputError(`the judge gave no valid '${k}' score (${String(v)})`);
    out[k] = Math.min(5, Math.max(1, v));
  }
  return out;
}
