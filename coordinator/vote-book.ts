/**
 * The collector's state machine, free of NATS: one iteration's prompts, what has arrived for
 * each, which are voted, and when a prompt is due — as soon as every live member has answered it
 * and every live judge assigned a batch (protocol/judges.ts; by default every member but the
 * author, plus the author under self-judging) has judged it, leaving out what members gave up on
 * ({@link VoteBook.excuse}), or when its deadline passes, counted from its first candidate batch.
 * The collector feeds it from the streams and publishes what it decides; tests drive it directly.
 * A prompt's messages are kept only until its pairs are out ({@link VoteBook.release}): a voted
 * prompt holds no memory (open ones do, from their first message on).
 *
 * An assigned judge that is dead (its heartbeat lapsed) or gave up is not replaced: the prompt is
 * voted without its scores, as it is without a dead judge's when every member judges, so the
 * assignment stays a pure function of the panel that judges and coordinator compute alike. With
 * few judges per author that can leave an author's candidates with no judge (then unvoted, under
 * `minJudges`) until the next iteration's panel leaves the dead member out.
 */
import { Bitset, JudgeAssignment, type CandidateBatch, type PreferencePair, type Verdict, type VotingConfig } from "../protocol/mod.ts";
import type { PromptLookup } from "./iteration-prompts.ts";
import { addToTally, newTally, votePrompt, verdictKey, type PromptTally } from "./voting.ts";

export class VoteBook {
  /** Prompts that have had a message or an excuse and are not yet released. */
  private readonly tallies = new Map<string, PromptTally>();
  /** Positions in the iteration of the prompts with a tally (the lookup may have let their chunk go). */
  private readonly positions = new Map<string, number>();
  /** One bit per prompt of the iteration, by position: 125 KB at a million prompts, where a set of ids was ~100 MB. */
  private readonly voted: Bitset;
  private readonly total: number;
  /** When a prompt's first candidate batch arrived: its deadline counts from there. */
  private readonly firstSeen = new Map<string, number>();
  /** Work members gave up on, per prompt: an author's answer (`author`) or a judge's verdict on one author (`judge|author`). */
  private readonly excused = new Map<string, Set<string>>();

  constructor(
    /** The iteration's prompts; a prompt's tally is made when something arrives for it. */
    private readonly lookup: PromptLookup,
    /** The iteration's members: only their candidates and verdicts count. */
    readonly participants: ReadonlySet<string>,
    private readonly voting: VotingConfig,
    private readonly voteMs: number,
    /** Who judges whose candidates; by default every member judges every other. */
    private readonly assignment: JudgeAssignment = new JudgeAssignment("all", 0, participants),
  ) {
    this.total = lookup.count;
    this.voted = new Bitset(this.total);
  }

  get prompts(): number {
    return this.total;
  }

  get votedCount(): number {
    return this.voted.count;
  }

  get complete(): boolean {
    return this.voted.count === this.total;
  }

  /** Whether the prompt is voted; false for one the lookup does not know (not the iteration's). */
  isVoted(promptId: string): boolean {
    const at = this.positionOf(promptId);
    return at !== undefined && this.bit(at);
  }

  /** Records a prompt as voted (its pair is out, e.g. before a restart). */
  markVoted(promptId: string): void {
    const at = this.positionOf(promptId);
    if (at !== undefined) this.setBit(at, true);
  }

  /** Un-marks a prompt whose pair could not be published, so it is voted again (its tally is kept until {@link release}). */
  unmark(promptId: string): void {
    const at = this.positions.get(promptId);
    if (at !== undefined) this.setBit(at, false);
  }

  /** Forgets a voted prompt's messages once its pairs are out: a finished prompt holds no memory. */
  release(promptId: string): void {
    if (!this.isVoted(promptId)) return;
    this.tallies.delete(promptId);
    this.positions.delete(promptId);
    this.firstSeen.delete(promptId);
    this.excused.delete(promptId);
  }

  /**
   * A member gave up on its answer to the prompt (no `author`) or on judging `author`'s batch of
   * it: the prompt no longer waits for that. Returns the prompt to look at again, or undefined
   * when it changes nothing (unknown or voted prompt, a non-member).
   */
  excuse(promptId: string, peer: string, author?: string): string | undefined {
    if (!this.participants.has(peer) || (author !== undefined && !this.participants.has(author))) return undefined;
    if (!this.tallyOf(promptId)) return undefined;
    const set = this.excused.get(promptId) ?? new Set<string>();
    set.add(author === undefined ? peer : verdictKey(peer, author));
    this.excused.set(promptId, set);
    return promptId;
  }

  /**
   * Adds a batch or verdict; returns the prompt to look at again, or undefined when it changes
   * nothing (unknown prompt, already voted, a redelivery, a non-member).
   */
  add(message: CandidateBatch | Verdict, now: number): string | undefined {
    const speaker = message.type === "candidates" ? message.author : message.judge;
    if (!this.participants.has(speaker)) return undefined;
    // The coordinator dead-letters a verdict on an author its judge was not assigned; the book does not count one either.
    if (
      message.type === "verdict" &&
      !this.assignment.all &&
      message.authors.some((a) => a !== message.judge && !this.assignment.assigned(message.promptId, message.judge, a))
    )
      return undefined;
    const tally = this.tallyOf(message.promptId);
    if (!tally) return undefined;
    if (!addToTally(tally, message)) return undefined;
    if (message.type === "candidates" && !this.firstSeen.has(message.promptId)) this.firstSeen.set(message.promptId, now);
    return message.promptId;
  }

  /** True when nothing more is expected for the prompt from the live members. */
  ready(promptId: string, alive: ReadonlySet<string>): boolean {
    const tally = this.tallies.get(promptId);
    if (!tally) return false;
    const live = [...this.participants].filter((p) => alive.has(p));
    if (live.length === 0) return false;
    const excused = this.excused.get(promptId);
    const authors = excused ? live.filter((p) => !excused.has(p)) : live;
    // Counts first: most messages leave their prompt short of what it needs, and this says so
    // without walking every (judge, author) pair (the walk below runs about once per prompt).
    if (tally.batches.size < authors.length) return false;
    // Each batch needs its live assigned judges: at least perAuthor less the dead, plus its author under self-judging.
    const dead = this.participants.size - live.length;
    if (!excused && tally.verdicts.size < tally.batches.size * (this.assignment.perAuthor - dead + (this.voting.selfJudging ? 1 : 0))) return false;
    for (const author of authors) if (!tally.batches.has(author)) return false;
    for (const author of tally.batches.keys()) {
      for (const judge of this.judgesOf(promptId, author)) {
        if (!alive.has(judge)) continue;
        const key = verdictKey(judge, author);
        if (!tally.verdicts.has(key) && !excused?.has(key)) return false;
      }
    }
    return true;
  }

  /** The members expected to judge `author`'s batch of the prompt (the live ones among them are waited for). */
  private judgesOf(promptId: string, author: string): string[] {
    const assigned = this.assignment.all ? [...this.participants].filter((p) => p !== author) : this.assignment.judgesOf(promptId, author);
    return this.voting.selfJudging ? [...assigned, author] : assigned;
  }

  /**
   * Who the open prompts still wait for among the live members: authors yet to answer and judges
   * yet to score an author's batch (what a member gave up on is not waited for).
   */
  waitingOn(alive: ReadonlySet<string>): { prompts: number; authors: string[]; judges: string[] } {
    const authors = new Set<string>();
    const judges = new Set<string>();
    const open = this.open();
    for (const promptId of open) {
      const tally = this.tallies.get(promptId)!;
      const excused = this.excused.get(promptId);
      for (const p of this.participants) if (alive.has(p) && !tally.batches.has(p) && !excused?.has(p)) authors.add(p);
      for (const author of tally.batches.keys()) {
        for (const judge of this.judgesOf(promptId, author)) {
          const key = verdictKey(judge, author);
          if (alive.has(judge) && !tally.verdicts.has(key) && !excused?.has(key)) judges.add(judge);
        }
      }
    }
    return { prompts: open.length, authors: [...authors].sort(), judges: [...judges].sort() };
  }

  /** Whether the prompt's deadline has passed (it has had a candidate batch for longer than voteMs). */
  overdue(promptId: string, now: number): boolean {
    const first = this.firstSeen.get(promptId);
    return first !== undefined && now - first > this.voteMs;
  }

  /** When the earliest deadline of a prompt not yet voted passes (Infinity when none runs). */
  nextDeadline(): number {
    // firstSeen is in arrival order and voted prompts leave it on release, so the first unvoted
    // entry is the earliest: this runs after every vote and must not walk every open prompt.
    for (const [promptId, first] of this.firstSeen) {
      if (!this.isVoted(promptId)) return first + this.voteMs;
    }
    return Infinity;
  }

  /** The tally of a prompt of the iteration not yet voted, made on first use; undefined otherwise. */
  private tallyOf(promptId: string): PromptTally | undefined {
    let tally = this.tallies.get(promptId);
    if (tally) return this.bit(this.positions.get(promptId)!) ? undefined : tally;
    const found = this.lookup.find(promptId);
    if (!found || this.bit(found.index)) return undefined;
    this.tallies.set(promptId, (tally = newTally(found.prompt)));
    this.positions.set(promptId, found.index);
    return tally;
  }

  /** A prompt's position: from its tally when it has one, else from the lookup. */
  private positionOf(promptId: string): number | undefined {
    return this.positions.get(promptId) ?? this.lookup.find(promptId)?.index;
  }

  private bit(at: number): boolean {
    return this.voted.has(at);
  }

  private setBit(at: number, on: boolean): void {
    this.voted.set(at, on);
  }

  /** Prompts not yet voted that anything has arrived for (the others have nothing to vote on or wait for). */
  open(): string[] {
    return [...this.tallies.keys()].filter((p) => !this.isVoted(p));
  }

  /**
   * Votes the prompt when it is ready (or `force`): marks it voted and returns its pairs (maybe
   * none); undefined when it is not yet due. Mark first, so a concurrent call publishes nothing twice.
   */
  vote(promptId: string, alive: ReadonlySet<string>, force: boolean): PreferencePair[] | undefined {
    const tally = this.tallyOf(promptId);
    if (!tally) return undefined;
    if (!force && !this.ready(promptId, alive)) return undefined;
    this.setBit(this.positions.get(promptId)!, true);
    return votePrompt(tally, this.voting, { judges: this.participants });
  }
}
