/**
 * Collects one iteration's candidates and verdicts and votes each prompt as soon as it can: when
 * every live author has answered and every live judge has scored what it was assigned, or when
 * its deadline passes.
 * The coordinator's stream followers hand it the iteration's admitted messages ({@link accept});
 * they replay the streams from the start on every coordinator start, so a restarted coordinator
 * carries on.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  STREAMS,
  publishMessage,
  visitFromLeader,
  visitStored,
  subjects,
  type CandidateBatch,
  type ExperimentConfig,
  type IterationRecord,
  type PreferencePair,
  type Verdict,
  jetStreamOf,
  JudgeAssignment,
  type FenceView,
  type Published,
} from "../protocol/mod.ts";
import type { PromptLookup } from "./iteration-prompts.ts";
import { VoteBook } from "./vote-book.ts";

/** The iteration's prompts for the collector: a lookup, and a way to load what it looks up (a pool chunk). */
export type CollectorPrompts = PromptLookup & { prepare?(promptId: string): Promise<void> };

/** How the collector publishes and reads back pairs: with the leader's fencing token (coordinator/term.ts). */
export interface CollectorPublishing {
  /** Publishes a pair (default: unfenced). */
  publish?: (pair: PreferencePair) => Promise<Published>;
  /** Pairs of a leader that had lost the lead are not counted as out. */
  fence?: FenceView;
}

export interface CollectorStatus {
  prompts: number;
  voted: number;
  pairs: number;
}

/** How long open prompts may go without a counted message before the collector says what it waits for. */
export const QUIET_MS = 180_000;

/**
 * How long open prompts may go without a counted message before the collector reads what it
 * waits for from the stream leader (see {@link IterationCollector.rereadIfQuiet}); again every
 * REREAD_MS while it lasts.
 */
export const REREAD_MS = 60_000;

export class IterationCollector {
  private readonly book: VoteBook;
  private pairs = 0;
  /**
   * What the last sweep saw: a prompt only becomes due by a message of its own (handled as it
   * arrives), a change of the live panel, a deadline, or a failed publish; without one of those
   * a sweep would find nothing, and it ran after every vote (most of the coordinator's CPU).
   */
  private sweptAlive?: string;
  private retry = false;
  /** Pair publishes not yet acknowledged. */
  private readonly publishing = new Set<Promise<void>>();
  /** When a candidate batch or verdict last counted (or the collector started), and when quiet was last reported. */
  private countedAt = Date.now();
  private counted = 0;
  private quietToldAt = 0;
  /** When the waited-for subjects were last read from the stream leader; the read in flight. */
  private rereadAt = 0;
  private rereading?: Promise<void>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: ExperimentConfig,
    private readonly record: IterationRecord,
    private readonly prompts: CollectorPrompts,
    private readonly alive: () => Set<string>,
    private readonly log: Logger,
    private readonly onChange: () => void,
    private readonly via: CollectorPublishing = {},
  ) {
    this.book = new VoteBook(prompts, new Set(record.peers), config.voting, config.deadlines.voteMs, JudgeAssignment.of(config, record));
  }

  get status(): CollectorStatus {
    return { prompts: this.book.prompts, voted: this.book.votedCount, pairs: this.pairs };
  }

  /** Every prompt voted and every pair out (acknowledged by the stream). */
  get complete(): boolean {
    return this.book.complete && this.publishing.size === 0;
  }

  /** The iteration it collects. */
  get iteration(): number {
    return this.record.iteration;
  }

  /**
   * Reads the pairs already out (before a restart): those prompts stay voted. Read one at a time
   * into the book's bits, not held: an iteration can have a million pairs out.
   */
  async start(): Promise<void> {
    let messages = 0;
    await visitStored(
      this.nc,
      STREAMS.pairs.name,
      subjects.pair(this.config.experiment, this.record.iteration),
      "pair",
      async (p) => {
        messages++;
        await this.prompts.prepare?.(p.promptId);
        this.book.markVoted(p.promptId);
        this.book.release(p.promptId);
      },
      // A read tried again sees its pairs again: marking is idempotent, the count starts over.
      { fence: this.via.fence, begin: () => (messages = 0) },
    );
    // A prompt's pair per prompt, or every member's under per-member pairing; nothing was voted before.
    this.pairs = this.config.voting.pairing === "per-member" ? messages : this.book.votedCount;
  }

  /**
   * An admitted candidate batch or verdict of this iteration (the follower has checked it against
   * the iteration's roster); votes its prompt if that made it due.
   */
  async accept(message: CandidateBatch | Verdict): Promise<void> {
    if (message.iteration !== this.record.iteration) return;
    await this.prompts.prepare?.(message.promptId);
    const promptId = this.book.add(message, Date.now());
    if (!promptId) return;
    this.countedAt = Date.now();
    this.counted++;
    await this.maybeVote(promptId, false);
  }

  /** A member of this iteration gave up on its answer to a prompt or on judging an author's batch of it. */
  async excuse(e: { iteration: number; promptId: string; peer: string; author?: string; work: "answer" | "judge" }): Promise<void> {
    if (e.iteration !== this.record.iteration) return;
    await this.prompts.prepare?.(e.promptId);
    const promptId = this.book.excuse(e.promptId, e.peer, e.work === "judge" ? (e.author ?? "") : undefined);
    if (promptId) await this.maybeVote(promptId, false);
  }

  private async maybeVote(promptId: string, force: boolean): Promise<void> {
    const pairs = this.book.vote(promptId, this.alive(), force);
    if (!pairs) return;
    // Not awaited: the stream follower that delivered the deciding message goes on to the next
    // one while the pairs are acknowledged, and the publishes of the votes one batch of messages
    // decides leave in one write. `complete` waits for them.
    const out = this.publishPairs(promptId, pairs);
    this.publishing.add(out);
    void out.finally(() => this.publishing.delete(out));
  }

  private async publishPairs(promptId: string, pairs: PreferencePair[]): Promise<void> {
    try {
      const results = await Promise.all(pairs.map((pair) => (this.via.publish ? this.via.publish(pair) : publishMessage(jetStreamOf(this.nc), pair))));
      this.pairs += results.filter((r) => !r.duplicate).length;
    } catch (error) {
      // Not out: vote it again on the next sweep (its id makes a partial first try harmless).
      this.book.unmark(promptId);
      this.retry = true;
      this.log.warn({ err: error, promptId }, "could not publish a pair; will retry");
      this.onChange();
      return;
    }
    this.book.release(promptId);
    // Progress at every tenth of the prompts, not every prompt.
    const decile = (n: number) => Math.floor((n * 10) / this.book.prompts);
    if (decile(this.book.votedCount) !== decile(this.book.votedCount - 1)) {
      this.log.info({ iteration: this.record.iteration, voted: this.book.votedCount, of: this.book.prompts, pairs: this.pairs }, "voting");
    }
    this.onChange();
  }

  /** Re-checks every open prompt: after membership changes, for deadlines and failed publishes. */
  async sweep(now = Date.now()): Promise<void> {
    this.tellIfQuiet(now);
    this.rereadIfQuiet(now);
    const alive = [...this.alive()].sort().join(",");
    if (!this.retry && this.sweptAlive === alive && now < this.book.nextDeadline()) return;
    this.retry = false;
    this.sweptAlive = alive;
    for (const promptId of this.book.open()) {
      const overdue = this.book.overdue(promptId, now);
      if (overdue) this.log.warn({ promptId }, "vote deadline passed; voting with the verdicts in");
      await this.maybeVote(promptId, overdue);
    }
  }

  /**
   * A follower's replica can hold other messages than the stream leader at the same sequences
   * (nats-server 2.9.10 after a healed cut: protocol/reader/leader-read.ts), so what it never
   * delivered is not missing by any count, and republishing it is dropped as a duplicate. So open
   * prompts with nothing counted for {@link REREAD_MS} have the subjects of the members they wait
   * for (those judges' verdicts, those authors' batches of this iteration) read again from the
   * leader; the book counts what it had not. In the background, one read at a time: a sweep must
   * not wait for a read of a large iteration.
   */
  private rereadIfQuiet(now: number): void {
    if (this.rereading || now - Math.max(this.countedAt, this.rereadAt) < REREAD_MS) return;
    const waiting = this.book.waitingOn(this.alive());
    if (waiting.prompts === 0) return;
    this.rereadAt = now;
    const { experiment } = this.config;
    const it = this.record.iteration;
    const reads = [
      ...waiting.judges.map((judge) => [STREAMS.verdicts.name, subjects.verdict(experiment, it, judge), "verdict"] as const),
      ...waiting.authors.map((author) => [STREAMS.candidates.name, subjects.candidates(experiment, it, author), "candidates"] as const),
    ];
    const roster = new Set(this.record.peers);
    const read = async () => {
      const [counted, voted] = [this.counted, this.status.voted];
      for (const [stream, filter, type] of reads) {
        await visitFromLeader(this.nc, stream, filter, type, (m: CandidateBatch | Verdict) => this.accept(m), { roster: () => roster });
      }
      if (this.counted > counted) {
        this.log.warn(
          { iteration: it, subjects: reads.map(([, filter]) => filter), newlyCounted: this.counted - counted, votedSince: this.status.voted - voted },
          "the stream leader held waited-for messages this coordinator's reader never delivered (a replica that differs); counted them",
        );
      }
    };
    this.rereading = read()
      .catch((error: unknown) =>
        this.log.warn({ err: error, iteration: it }, "could not read what the open prompts wait for from the stream leader; will try again"),
      )
      .finally(() => (this.rereading = undefined));
  }

  /**
   * Never waits silently: open prompts and nothing counted for {@link QUIET_MS} (a reader that
   * misses messages, members that stopped) is reported, with who is still waited for, again
   * every QUIET_MS while it lasts.
   */
  private tellIfQuiet(now: number): void {
    if (now - Math.max(this.countedAt, this.quietToldAt) < QUIET_MS) return;
    const waiting = this.book.waitingOn(this.alive());
    if (waiting.prompts === 0) return;
    this.quietToldAt = now;
    this.log.warn(
      {
        iteration: this.record.iteration,
        openPrompts: waiting.prompts,
        waitingForJudges: waiting.judges,
        waitingForAuthors: waiting.authors,
        quietMs: now - this.countedAt,
      },
      "no candidate or verdict has counted for a while; still waiting",
    );
  }
}
