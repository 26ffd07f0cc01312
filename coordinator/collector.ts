/**
 * Collects one iteration's candidates and verdicts and votes each prompt as soon as it can: when
 * every live author has answered and every live judge has scored, or when its deadline passes.
 * Its state is rebuilt from the streams on start, so a restarted coordinator carries on.
 */
import { jetstream, type ConsumerMessages } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  STREAMS, publishMessage, readStored, subjects,
  type ExperimentConfig, type IterationRecord, type Prompt,
} from "../protocol/mod.ts";
import { followAdmitted } from "./follow.ts";
import { addToTally, newTally, votePrompt, type PromptTally } from "./voting.ts";

export interface CollectorStatus {
  prompts: number;
  voted: number;
  pairs: number;
}

export class IterationCollector {
  private readonly tallies = new Map<string, PromptTally>();
  private readonly voted = new Set<string>();
  /** Local time a prompt's first candidate batch arrived: its vote deadline counts from there. */
  private readonly firstSeen = new Map<string, number>();
  private readonly streams: ConsumerMessages[] = [];
  private pairs = 0;
  private readonly participants: Set<string>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: ExperimentConfig,
    private readonly record: IterationRecord,
    prompts: Prompt[],
    private readonly alive: () => Set<string>,
    private readonly log: Logger,
    private readonly onChange: () => void,
  ) {
    for (const p of prompts) this.tallies.set(p.promptId, newTally(p));
    this.participants = new Set(record.peers);
  }

  get status(): CollectorStatus {
    return { prompts: this.tallies.size, voted: this.voted.size, pairs: this.pairs };
  }

  get complete(): boolean {
    return this.voted.size === this.tallies.size;
  }

  async start(): Promise<void> {
    const exp = this.config.experiment;
    const it = this.record.iteration;
    // Prompts whose pair is already out (before a restart) stay voted.
    const { messages } = await readStored(this.nc, STREAMS.pairs.name, subjects.pair(exp, it), "pair");
    for (const p of messages) {
      if (!this.voted.has(p.promptId) || this.config.voting.pairing === "per-member") this.pairs++;
      this.voted.add(p.promptId);
    }
    await this.follow(STREAMS.candidates.name, subjects.iteration(exp, "cand", it), "candidates");
    await this.follow(STREAMS.verdicts.name, subjects.iteration(exp, "verdict", it), "verdict");
  }

  private async follow(stream: string, filter: string, type: "candidates" | "verdict"): Promise<void> {
    const messages = await followAdmitted({
      nc: this.nc, stream, filter, types: [type], log: this.log, as: `${this.config.experiment}-coordinator`,
      // Only the iteration's members speak; anything else is dead-lettered, never counted.
      roster: () => this.participants,
      handle: async (message) => {
        const tally = this.tallies.get(message.promptId);
        if (!tally || this.voted.has(message.promptId)) return;
        if (!addToTally(tally, message)) return;
        if (message.type === "candidates" && !this.firstSeen.has(message.promptId)) this.firstSeen.set(message.promptId, Date.now());
        await this.maybeVote(message.promptId, false);
      },
    });
    this.streams.push(messages);
  }

  /** True when nothing more is expected for the prompt from the live panel. */
  private ready(tally: PromptTally, alive: Set<string>): boolean {
    const live = [...this.participants].filter((p) => alive.has(p));
    if (live.length === 0) return false;
    for (const author of live) if (!tally.batches.has(author)) return false;
    for (const author of tally.batches.keys()) {
      for (const judge of live) {
        if (judge === author && !this.config.voting.selfJudging) continue;
        if (!tally.verdicts.has(`${judge}|${author}`)) return false;
      }
    }
    return true;
  }

  private async maybeVote(promptId: string, force: boolean): Promise<void> {
    if (this.voted.has(promptId)) return;
    const tally = this.tallies.get(promptId)!;
    if (!force && !this.ready(tally, this.alive())) return;
    // Mark first: a concurrent call for the same prompt must not publish a second pair.
    this.voted.add(promptId);
    const pairs = votePrompt(tally, this.config.voting, { judges: this.participants });
    try {
      for (const pair of pairs) {
        const r = await publishMessage(jetstream(this.nc), pair);
        if (!r.duplicate) this.pairs++;
      }
    } catch (error) {
      // Not out: vote it again on the next sweep (its id makes a partial first try harmless).
      this.voted.delete(promptId);
      this.log.warn({ err: error, promptId }, "could not publish a pair; will retry");
      return;
    }
    // Progress at every tenth of the prompts, not every prompt.
    const decile = (n: number) => Math.floor((n * 10) / this.tallies.size);
    if (decile(this.voted.size) !== decile(this.voted.size - 1)) {
      this.log.info({ iteration: this.record.iteration, voted: this.voted.size, of: this.tallies.size, pairs: this.pairs }, "voting");
    }
    this.onChange();
  }

  /** Re-checks every open prompt: after membership changes, and for deadlines. */
  async sweep(now = Date.now()): Promise<void> {
    for (const promptId of this.tallies.keys()) {
      if (this.voted.has(promptId)) continue;
      const first = this.firstSeen.get(promptId);
      const overdue = first !== undefined && now - first > this.config.deadlines.voteMs;
      if (overdue) this.log.warn({ promptId }, "vote deadline passed; voting with the verdicts in");
      await this.maybeVote(promptId, overdue);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.streams.map((s) => s.close().catch(() => undefined)));
  }
}
