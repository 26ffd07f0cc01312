/**
 * Catching up on work whose delivery was lost. The durable consumers are meant to redeliver
 * everything not acked, but a site's link cut for 30 s on nats-server 2.9 was seen to leave a
 * candidate batch acked on the server that its judge never saw, and the iteration then waited
 * for that verdict forever. So an idle peer checks, against the streams and records themselves,
 * that it has answered every prompt and judged every candidate batch it is assigned in the open
 * iteration, and trained on the iteration being trained on, and does what is missing. Answering and judging
 * are idempotent (message ids), so a check that races a late delivery costs work, never a
 * duplicate; training runs one at a time and finds the model record once it is done.
 *
 * An iteration can have a million prompts: a check reads the streams one message at a time into
 * a bit per prompt (what this peer answered, and judged of each author), and takes at most
 * {@link MAX_WORK_PER_ROUND} prompts and as many batches per round (`maxWork`); the next round
 * does the rest.
 */

/** Prompts to answer, and batches to judge, that one round takes at most (what it holds). */
export const MAX_WORK_PER_ROUND = 1024;
import {
  Bitset,
  JudgeAssignment,
  PoolReader,
  PopError,
  STREAMS,
  consumers,
  managerOf,
  openBlobs,
  readRecord,
  stateKeys,
  subjects,
  visitStored,
  type MessageOf,
} from "../protocol/mod.ts";
import type { PeerContext } from "./context.ts";
import type { PeerRoles } from "./roles.ts";
import type { Training } from "./training.ts";

/** What one catch-up found missing and did. */
export interface CatchUpResult {
  iteration?: number;
  answered: number;
  judged: number;
  /** Whether it trained on an iteration whose close was never delivered. */
  trained?: boolean;
}

/**
 * The iteration is closed and this member has not trained on it (its model record is older),
 * while nothing of this peer's control consumer is pending or being handled (by this process
 * or another process of the same peer): the close was never delivered. Trains as the inbox
 * would have. The consumer is looked at before the record: a process that trains writes the
 * record before it acks the close, so a close acked meanwhile shows in the record.
 */
async function trainIfMissed(ctx: PeerContext, training: Training, iteration: number, tried: Set<string>): Promise<boolean> {
  // Once per iteration and process: a backend that does not train writes no model record.
  if (training.busy || tried.has(`train|${iteration}`)) return false;
  const record = await ctx.iteration(iteration);
  if (!record?.peers.includes(ctx.peer)) return false;
  const spec = consumers.peerControl(ctx.experiment, ctx.peer);
  const control = await (await managerOf(ctx.nc)).consumers.info(spec.stream, spec.config.durable_name!);
  if (control.num_pending > 0 || control.num_ack_pending > 0) return false;
  const model = await readRecord(ctx.state, stateKeys.model(ctx.experiment, ctx.peer), "model");
  if ((model?.iteration ?? 0) >= iteration) return false;
  ctx.log.warn({ iteration }, "the iteration closed but its close was never delivered to this peer; training now");
  await training.train(iteration);
  tried.add(`train|${iteration}`);
  return true;
}

/**
 * Answers and judges what this peer has not yet for the iteration now collecting. `tried` holds
 * the work attempted by earlier catch-ups of this process, tried once only (a prompt the model
 * cannot answer must not be retried every round).
 */
export async function catchUp(ctx: PeerContext, roles: PeerRoles, tried: Set<string>, batchSize = 32, maxWork = MAX_WORK_PER_ROUND): Promise<CatchUpResult> {
  const progress = await readRecord(ctx.state, stateKeys.progress(ctx.experiment), "progress");
  if (progress?.phase === "training")
    return { iteration: progress.iteration, answered: 0, judged: 0, trained: await trainIfMissed(ctx, roles.training, progress.iteration, tried) };
  if (!progress || progress.phase !== "collecting") return { answered: 0, judged: 0 };
  const it = progress.iteration;
  const record = await ctx.iteration(it);
  if (!record || !record.peers.includes(ctx.peer)) return { iteration: it, answered: 0, judged: 0 };
  const exp = ctx.experiment;
  const members: ReadonlySet<string> = new Set(record.peers);
  // A peer may not ask the verdicts stream's leader (STREAM.MSG.GET would show others' verdicts).
  const visit = <T extends "prompt" | "candidates" | "verdict">(
    stream: string,
    filter: string,
    type: T,
    each: (m: MessageOf<T>) => void | Promise<void>,
    begin: () => void,
  ) => visitStored(ctx.nc, stream, filter, type, each, { roster: () => members, fence: ctx.fence, begin, askLeader: stream !== STREAMS.verdicts.name });

  // Positions in the iteration by prompt id, from the pool a chunk at a time (no table of every id).
  const pinned = record.prompts.pool === ctx.config.pool.name ? ctx.config.pool : undefined;
  const pool = await PoolReader.open(await openBlobs(ctx.nc), record.prompts.pool, pinned);
  if (!pool) throw new PopError(`iteration ${it}'s prompt pool '${record.prompts.pool}' is not in the object store`, { retryable: true });
  const { offset, count } = record.prompts;
  const positionOf = async (promptId: string): Promise<number | undefined> => {
    await pool.prepare(promptId);
    const at = pool.cached(promptId)?.index;
    return at === undefined || at < offset || at >= offset + count ? undefined : at - offset;
  };

  const answered = new Bitset(count);
  await visit(
    STREAMS.candidates.name,
    subjects.candidates(exp, it, ctx.peer),
    "candidates",
    async (c) => {
      const at = await positionOf(c.promptId);
      if (at !== undefined) answered.set(at);
    },
    () => answered.clear(),
  );
  // The iteration's subject holds its prompts only (the coordinator publishes there, nobody else may).
  // A takeover may have published a prompt again (another fencing token): answer it once.
  const toAnswer: MessageOf<"prompt">[] = [];
  const seen = new Bitset(count);
  await visit(
    STREAMS.prompts.name,
    subjects.prompt(exp, it),
    "prompt",
    async (p) => {
      const at = await positionOf(p.promptId);
      if (at === undefined || seen.has(at) || answered.has(at)) return;
      seen.set(at);
      if (!tried.has(`answer|${p.promptId}`) && toAnswer.length < maxWork) toAnswer.push(p);
    },
    () => {
      seen.clear();
      toAnswer.length = 0;
    },
  );

  // What this peer judged, a bit per prompt for each author.
  const judged = new Map(record.peers.map((a) => [a, new Bitset(count)]));
  await visit(
    STREAMS.verdicts.name,
    subjects.verdict(exp, it, ctx.peer),
    "verdict",
    async (v) => {
      const at = await positionOf(v.promptId);
      if (at !== undefined) for (const a of v.authors) judged.get(a)?.set(at);
    },
    () => judged.forEach((b) => b.clear()),
  );
  const toJudge: MessageOf<"candidates">[] = [];
  const assignment = JudgeAssignment.of(ctx.config, record);
  for (const author of record.peers) {
    if (author === ctx.peer && !ctx.config.voting.selfJudging) continue;
    if (toJudge.length >= maxWork) break;
    const from = toJudge.length;
    const taken = new Bitset(count); // a batch stored twice is judged once
    await visit(
      STREAMS.candidates.name,
      subjects.candidates(exp, it, author),
      "candidates",
      async (c) => {
        if (toJudge.length >= maxWork) return;
        if (author !== ctx.peer && !assignment.assigned(c.promptId, ctx.peer, author)) return; // another member's to judge
        const at = await positionOf(c.promptId);
        if (at === undefined || judged.get(author)!.has(at) || taken.has(at) || tried.has(`judge|${c.promptId}|${c.author}`)) return;
        taken.set(at);
        toJudge.push(c);
      },
      () => {
        taken.clear();
        toJudge.length = from;
      },
    );
  }
  if (toAnswer.length === 0 && toJudge.length === 0) return { iteration: it, answered: 0, judged: 0 };
  ctx.log.warn(
    { iteration: it, toAnswer: toAnswer.length, toJudge: toJudge.length },
    "work of the open iteration was never delivered to this peer; doing it now",
  );
  for (let i = 0; i < toAnswer.length; i += batchSize) {
    const chunk = toAnswer.slice(i, i + batchSize);
    await roles.answering.answer(chunk);
    // Only once done: a chunk that failed (the server gone again) is tried next round.
    for (const p of chunk) tried.add(`answer|${p.promptId}`);
  }
  for (let i = 0; i < toJudge.length; i += batchSize) {
    const chunk = toJudge.slice(i, i + batchSize);
    // Judged now; a failure shows here as in a handler's.
    await roles.judging.judge(chunk);
    for (const c of chunk) tried.add(`judge|${c.promptId}|${c.author}`);
  }
  return { iteration: it, answered: toAnswer.length, judged: toJudge.length };
}
