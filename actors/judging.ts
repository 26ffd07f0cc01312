/**
 * Judging: absolute 1–5 scores on the five criteria for the candidates of the peers' batches,
 * one verdict per prompt. A judge judges the authors it is assigned (protocol/judges.ts: every
 * other member by default, m of them per prompt under `judging.judgesPerAuthor`) and leaves the
 * other batches alone. It gathers a prompt's batches until every author it judges has
 * answered (or the experiment's `judgeLingerMs` has passed since the first arrived), then scores
 * them together and publishes one verdict for all of them, so a prompt costs N verdicts, not N².
 * The batches stay unacknowledged until their verdict is out (a crash redelivers them).
 */
import {
  CRITERIA,
  JudgeAssignment,
  PROTOCOL_VERSION,
  parseSubject,
  publishMessage,
  type CandidateBatch,
  type Decided,
  type Delivery,
  type MessageOf,
  type Outcome,
  type Verdict,
  type VerdictScore,
} from "../protocol/mod.ts";
import { judgeOnce } from "./models/judge-once.ts";
import type { Judgement, JudgeInput } from "./models/contract.ts";
import type { PeerContext } from "./context.ts";
import { PIPELINE_DEPTH } from "./pipeline.ts";
import { ModelOutputError } from "./models/errors.ts";

/** One prompt's batches gathered so far. */
interface Ballot {
  iteration: number;
  promptId: string;
  /** Authors this judge still waits for. */
  waiting: Set<string>;
  batches: Map<string, { batch: CandidateBatch; done: Promise<Decided>; settle: (o: Decided | Error) => void }>;
  timer?: NodeJS.Timeout;
  /** Once taken for judging: resolves when that ended, true when its verdict was stored. */
  stored?: Promise<boolean>;
  ended?: (stored: boolean) => void;
}

/**
 * How many recently judged prompts a judge remembers (with the authors judged), so that a
 * straggler's batch is judged at once instead of lingering: twice the coordinator's window of
 * open prompts. A prompt that many judgements back has nearly always been voted; one forgotten
 * early only waits judgeLingerMs. Bounded by the window, a judge's memory stays flat however
 * many prompts an iteration has.
 */
const rememberedPrompts = (openPrompts: number) => 2 * openPrompts;

/**
 * Prompts judged in one model call at most (a prompt of 3 members at k = 4: 8 candidates, so 256
 * candidates a call). The tiny model's cost per candidate is flat from about 128 candidates a
 * call on (0.76 ms at 128 and 256, 1.9 ms at 8), while a larger call only holds the model longer.
 */
const PROMPTS_PER_CALL = 32;
/** Queued prompts at which the candidates inbox's handler waits: about two calls' worth. */
const QUEUED_PROMPTS = 2 * PROMPTS_PER_CALL;

/** A peer's ballots, one per prompt being gathered. */
class BallotBox {
  private readonly ballots = new Map<string, Ballot>();
  /** Per recent prompt, the judging that took each author: a later batch of that author waits for it. */
  private readonly judged = new Map<string, Map<string, Promise<boolean>>>();
  /** The ballots whose every author has answered, not yet judged (kept apart: scanning every ballot per batch grows with the backlog). */
  private readonly ready = new Set<Ballot>();
  /**
   * Ballots taken out of the box, waiting for a model call. A call takes every ballot queued when
   * it starts (up to {@link PROMPTS_PER_CALL}): ballots whose linger ended at the same moment, and
   * ready ones from several deliveries while the model was busy, share one call instead of each
   * making a small one.
   */
  private readonly queued: Ballot[] = [];
  /** Judging calls in flight, at most PIPELINE_DEPTH. */
  private running = 0;
  /** Handlers waiting for the queue to shrink (backpressure on the inbox). */
  private readonly roomWaiters: (() => void)[] = [];
  private drainScheduled = false;
  private closed = false;

  constructor(private readonly ctx: PeerContext) {}

  /**
   * Adds a batch to its prompt's ballot; resolves with the batch's outcome once its verdict is
   * out. `authors` are the ones this judge judges for the prompt's iteration.
   */
  add(batch: CandidateBatch, authors: string[]): Promise<Decided> {
    const key = `${batch.iteration}|${batch.promptId}`;
    const earlier = this.judged.get(key)?.get(batch.author);
    if (earlier) {
      // This author's batch was judged here already (a redelivery whose ack was lost, or
      // catch-up racing the inbox). Judged again alone, its verdict would name other authors
      // than the first, so it would have another id and be stored as a second verdict on the
      // author: wait for that judging instead, and judge again only if its verdict is not out.
      return earlier.then((stored) => {
        if (stored) return "ack";
        if (this.judged.get(key)?.get(batch.author) === earlier) this.judged.get(key)!.delete(batch.author);
        return this.add(batch, authors);
      });
    }
    let b = this.ballots.get(key);
    if (!b) {
      const done = this.judged.get(key);
      b = { iteration: batch.iteration, promptId: batch.promptId, waiting: new Set(authors.filter((a) => !done?.has(a))), batches: new Map() };
      this.ballots.set(key, b);
      const ballot = b;
      b.timer = setTimeout(() => void this.judge([ballot]), this.ctx.config.deadlines.judgeLingerMs);
      b.timer.unref();
    }
    const had = b.batches.get(batch.author);
    if (had) return had.done; // the same batch delivered again while it waits
    let settle!: (o: Decided | Error) => void;
    const done = new Promise<Decided>((resolve, reject) => (settle = (o) => (o instanceof Error ? reject(o) : resolve(o))));
    b.batches.set(batch.author, { batch, done, settle });
    b.waiting.delete(batch.author);
    if (b.waiting.size === 0) this.ready.add(b);
    return done;
  }

  /** Ballots whose every author has answered. */
  complete(): Ballot[] {
    return [...this.ready];
  }

  /** Every ballot now, complete or not (catch-up judges what it has). */
  all(): Ballot[] {
    return [...this.ballots.values()];
  }

  /**
   * Queues the ballots for judging (a model call, then a verdict per prompt, settling their
   * deliveries); resolves once the queue has room, not when they are judged. The ballots leave
   * the box now, so a later call cannot take them too.
   */
  async judge(ballots: Ballot[]): Promise<void> {
    const mine = ballots.filter((b) => this.ballots.get(`${b.iteration}|${b.promptId}`) === b);
    for (const b of mine) {
      const key = `${b.iteration}|${b.promptId}`;
      clearTimeout(b.timer);
      this.ballots.delete(key);
      this.ready.delete(b);
      // Being judged counts as judged: a straggler of the prompt is judged at once instead of
      // lingering, and a batch of this call delivered again waits for this call's verdict (the
      // coordinator counts a judge's scores of an author once; see add()).
      b.stored = new Promise<boolean>((resolve) => (b.ended = resolve));
      const judged = this.judged.get(key) ?? new Map<string, Promise<boolean>>();
      for (const a of b.batches.keys()) judged.set(a, b.stored);
      this.judged.delete(key);
      this.judged.set(key, judged);
      if (this.judged.size > rememberedPrompts(this.ctx.config.openPrompts)) this.judged.delete(this.judged.keys().next().value!);
    }
    if (mine.length === 0) return;
    this.queued.push(...mine);
    this.scheduleDrain();
    while (!this.closed && this.queued.length >= QUEUED_PROMPTS) await new Promise<void>((r) => this.roomWaiters.push(r));
  }

  /**
   * Starts calls on the next turn of the event loop, so ballots queued in the same turn (timers
   * that fire together, a delivery's ready prompts) go in one call.
   */
  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    while (!this.closed && this.running < PIPELINE_DEPTH && this.queued.length > 0) {
      const take = this.queued.splice(0, PROMPTS_PER_CALL);
      this.running++;
      // judgeNow settles every delivery itself, failures included.
      void this.judgeNow(take).finally(() => {
        this.running--;
        this.drain();
      });
    }
    if (this.queued.length < QUEUED_PROMPTS) for (const wake of this.roomWaiters.splice(0)) wake();
  }

  /** Stops the lingering timers (the inbox hands the held deliveries back). */
  close(): void {
    this.closed = true;
    for (const b of this.ballots.values()) clearTimeout(b.timer);
    this.ballots.clear();
    this.ready.clear();
    this.queued.length = 0;
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private async judgeNow(mine: Ballot[]): Promise<void> {
    if (this.closed) {
      for (const b of mine) b.ended?.(false);
      return;
    }
    let verdicts: Verdict[];
    try {
      verdicts = await judgeBatches(
        this.ctx,
        mine.map((b) => [...b.batches.values()].map((e) => e.batch)),
      );
    } catch (error) {
      for (const b of mine) this.failed(b, error);
      return;
    }
    // One verdict per ballot, in order; each ballot is settled by its own verdict's fate.
    await Promise.all(
      verdicts.map((v, i) =>
        publishMessage(this.ctx.js, v).then(
          (published) => {
            this.ctx.log.debug({ promptId: v.promptId, authors: v.authors, seq: published.seq, duplicate: published.duplicate }, "verdict published");
            for (const e of mine[i]!.batches.values()) e.settle("ack");
            mine[i]!.ended?.(true);
          },
          (error: unknown) => this.failed(mine[i]!, error),
        ),
      ),
    );
  }

  /**
   * A ballot's verdict is not out (maybe stored, its ack lost): its authors count as unjudged
   * again, so that their redelivered batches gather into one ballot again, whose verdict has the
   * same id as this one (the stream drops it if this one was stored after all).
   */
  private failed(b: Ballot, error: unknown): void {
    const judged = this.judged.get(`${b.iteration}|${b.promptId}`);
    for (const a of b.batches.keys()) if (judged && judged.get(a) === b.stored) judged.delete(a);
    for (const e of b.batches.values()) e.settle(error instanceof Error ? error : new Error(String(error)));
    b.ended?.(false);
  }
}

/** The judging role of one actor: owns the ballot box (and with it the pipeline of judging calls). */
export class Judging {
  private readonly box: BallotBox;
  /** The assignment of the iterations met lately (one or two at a time). */
  private readonly assignments = new Map<number, JudgeAssignment>();

  constructor(private readonly ctx: PeerContext) {
    this.box = new BallotBox(ctx);
  }

  /**
   * The candidates inbox's handler: batches this peer judges go into their prompts' ballots and
   * are settled when their verdict is out; prompts whose every author is in are judged now, together.
   */
  handle(batch: Delivery<MessageOf<"candidates">>[]): Promise<Outcome[]> {
    return this.gather(
      batch.map((d) => d.message),
      false,
    );
  }

  /**
   * Judges the batches now (catch-up's way): every prompt among them is judged with what its
   * ballot has, and this resolves once their verdicts are out, with each batch's outcome ("ack"
   * also for a batch this peer does not judge); a failed judging rejects, as in a handler.
   */
  async judge(batches: MessageOf<"candidates">[]): Promise<Decided[]> {
    const outcomes = await this.gather(batches, true);
    return Promise.all(outcomes.map((o) => (typeof o === "object" && "later" in o ? o.later : o)));
  }

  /**
   * Whether a delivery on `subject` is this peer's own candidate batch, which it does not judge
   * (without self-judging): the inbox acks it unread, as the handler would after decoding it.
   */
  skips(subject: string): boolean {
    if (this.ctx.config.voting.selfJudging) return false;
    try {
      const s = parseSubject(subject);
      return s.kind === "cand" && s.peer === this.ctx.peer;
    } catch {
      return false; // not a subject of ours: admission dead-letters it
    }
  }

  /** Stops the lingering timers; what the box holds is handed back by the inbox. */
  stop(): void {
    this.box.close();
  }

  /** Puts the batches this peer judges into their ballots; with `now`, judges every ballot at once. */
  private async gather(batch: MessageOf<"candidates">[], now: boolean): Promise<Outcome[]> {
    const ctx = this.ctx;
    const box = this.box;
    const outcomes: Outcome[] = batch.map(() => "ack");
    for (const [i, c] of batch.entries()) {
      if (c.author === ctx.peer && !ctx.config.voting.selfJudging) continue;
      if (!(await ctx.takesPart(c.iteration))) continue;
      // An outsider's answers are not judged (nor, at the coordinator, paired).
      const members = (await ctx.iteration(c.iteration))!.peers;
      if (!members.includes(c.author)) {
        outcomes[i] = { dead: `'${c.author}' is not a member of iteration ${c.iteration} (members: ${members.join(", ")})`, reason: "not_member" };
        continue;
      }
      // Not assigned to this judge: others judge it (and the coordinator would not count this judge's scores).
      const assignment = this.assignmentOf(c.iteration, members);
      if (c.author !== ctx.peer && !assignment.assigned(c.promptId, ctx.peer, c.author)) continue;
      const authors = members.filter((a) => (a === ctx.peer ? ctx.config.voting.selfJudging : assignment.assigned(c.promptId, ctx.peer, a)));
      outcomes[i] = { later: box.add(c, authors) };
    }
    const ready = now ? box.all() : box.complete();
    if (ready.length) await box.judge(ready);
    return outcomes;
  }

  private assignmentOf(iteration: number, members: string[]): JudgeAssignment {
    let a = this.assignments.get(iteration);
    if (!a) {
      if (this.assignments.size >= 4) this.assignments.delete(this.assignments.keys().next().value!);
      this.assignments.set(iteration, (a = JudgeAssignment.of(this.ctx.config, { iteration, peers: members })));
    }
    return a;
  }
}

/** Scores every candidate of the given prompts' batches in one model call: one verdict per prompt. */
async function judgeBatches(ctx: PeerContext, prompts: CandidateBatch[][]): Promise<Verdict[]> {
  const todo = prompts.flat();
  const inputs = await Promise.all(todo.map((c) => ctx.promptInput(c.promptId, c.question, c.images)));
  const items: JudgeInput[] = todo.flatMap((c, i) => c.candidates.map((cand) => ({ prompt: inputs[i]!, answer: cand.text })));
  const t0 = performance.now();
  const judgements = await ctx.cost.meter(todo[0]!.iteration, "judge", () => judgeOnce(ctx.backend, items, ctx.config.judging));
  let at = 0;
  let abstained = 0;
  const verdicts = prompts.map((batches) => {
    const sorted = [...batches].sort((a, b) => a.author.localeCompare(b.author));
    const scores: VerdictScore[] = [];
    for (const c of batches) {
      const mine = c.candidates.map((cand) => verdictScore(cand.candidateId, judgements[at++]!));
      const out = mine.filter((s) => s.abstained);
      if (out.length) {
        abstained += out.length;
        ctx.log.warn(
          { promptId: c.promptId, author: c.author, abstained: out.length, of: mine.length, reason: out[0]!.abstained },
          "abstained on candidates whose judgement could not be read; the vote leaves them out",
        );
      }
      scores.push(...mine);
    }
    const first = sorted[0]!;
    const verdict: Verdict = {
      v: PROTOCOL_VERSION,
      type: "verdict",
      experiment: ctx.experiment,
      iteration: first.iteration,
      promptId: first.promptId,
      judge: ctx.peer,
      authors: sorted.map((c) => c.author),
      modelVersion: ctx.modelVersion,
      scores,
      createdAt: Date.now(),
    };
    return verdict;
  });
  ctx.log.debug({ prompts: prompts.length, candidates: items.length, abstained, ms: Math.round(performance.now() - t0) }, "judged candidates");
  return verdicts;
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
