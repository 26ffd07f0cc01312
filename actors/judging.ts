/** Judging: absolute 1–5 scores on the five criteria for every candidate of the peers' batches. */
import { CRITERIA, PROTOCOL_VERSION, publishMessage, type Delivery, type MessageOf, type Outcome, type Verdict, type VerdictScore } from "../protocol/mod.ts";
import { judgeOnce } from "./backend/judge-once.ts";
import type { Judgement, JudgeInput } from "./backend/types.ts";
import type { PeerContext } from "./context.ts";
import { ModelOutputError } from "./errors.ts";

export async function judgeCandidates(ctx: PeerContext, batch: Delivery<MessageOf<"candidates">>[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = batch.map(() => "ack");
  const todo: MessageOf<"candidates">[] = [];
  for (const [i, d] of batch.entries()) {
    const c = d.message;
    if (c.author === ctx.peer && !ctx.config.voting.selfJudging) continue;
    if (!(await ctx.takesPart(c.iteration))) continue;
    // An outsider's answers are not judged (nor, at the coordinator, paired).
    const members = (await ctx.iteration(c.iteration))!.peers;
    if (!members.includes(c.author)) {
      outcomes[i] = { dead: `'${c.author}' is not a member of iteration ${c.iteration} (members: ${members.join(", ")})`, reason: "not_member" };
      continue;
    }
    todo.push(c);
  }
  if (todo.length === 0) return outcomes;
  const prompts = await Promise.all(todo.map((c) => ctx.promptInput(c.promptId, c.question, c.images)));
  const items: JudgeInput[] = todo.flatMap((c, i) => c.candidates.map((cand) => ({ prompt: prompts[i]!, answer: cand.text })));
  const t0 = performance.now();
  const judgements = await judgeOnce(ctx.backend, items);
  let at = 0;
  let abstained = 0;
  // Published side by side: one ack round trip for the batch instead of one per verdict.
  const publishing: Promise<void>[] = [];
  for (const c of todo) {
    const scores = c.candidates.map((cand) => verdictScore(cand.candidateId, judgements[at++]!));
    const mine = scores.filter((s) => s.abstained);
    if (mine.length) {
      abstained += mine.length;
      ctx.log.warn({ promptId: c.promptId, author: c.author, abstained: mine.length, of: scores.length, reason: mine[0]!.abstained }, "abstained on candidates whose judgement could not be read; the vote leaves them out");
    }
    const verdict: Verdict = {
      v: PROTOCOL_VERSION,
      type: "verdict",
      experiment: ctx.experiment,
      iteration: c.iteration,
      promptId: c.promptId,
      judge: ctx.peer,
      author: c.author,
      modelVersion: ctx.modelVersion,
      scores,
      createdAt: Date.now(),
    };
    publishing.push(publishMessage(ctx.js, verdict).then((published) => {
      ctx.log.debug({ promptId: c.promptId, author: c.author, seq: published.seq, duplicate: published.duplicate }, "verdict published");
    }));
  }
  await Promise.all(publishing);
  ctx.log.debug({ batches: todo.length, candidates: items.length, abstained, ms: Math.round(performance.now() - t0) }, "judged candidates");
  return outcomes;
}

/**
 * A judge must answer 1..5 on every criterion or abstain; a backend that returns anything else
 * is faulty (not merely unsure), so that is an error rather than a silent abstention.
 */
function verdictScore(candidateId: string, j: Judgement): VerdictScore {
  if ("abstained" in j) return { candidateId, abstained: j.abstained.slice(0, 1024) || "unreadable" };
  const likert = {} as NonNullable<VerdictScore["likert"]>;
  for (const k of CRITERIA) {
    const v = j.likert?.[k];
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ModelOutputError(`the judge gave no valid '${k}' score (${String(v)})`);
    likert[k] = Math.min(5, Math.max(1, v));
  }
  return { candidateId, likert };
}
