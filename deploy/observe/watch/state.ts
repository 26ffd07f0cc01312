/**
 * What `pop watch` knows about a running experiment, built from its messages (read from the
 * streams from the start, then live) and the members' records. Pure: fed messages and clock
 * times, it answers what the view shows.
 */
import type { LeaseRecord, Member, Message, MessageOf } from "../../../protocol/mod.ts";
import { CostBook, type CostRow } from "../cost.ts";

/** Seconds over which message rates are counted. */
export const RATE_WINDOW_MS = 10_000;
/** A peer that published an answer or a verdict this recently is shown as doing so. */
const BUSY_MS = 3_000;

/** One iteration's progress: done counts against what a full iteration has. */
export interface IterationProgress {
  iteration: number;
  peers: string[];
  prompts: number;
  candidates: number;
  verdicts: number;
  pairs: number;
  /** Prompts voted on and pairs kept, once the coordinator closed the iteration. */
  closed?: { voted: number; pairs: number };
  openedAt?: number;
  trained: string[];
}

interface PeerSeen {
  lastCandidateAt?: number;
  lastVerdictAt?: number;
}

export class WatchState {
  readonly iterations = new Map<number, IterationProgress>();
  /** Member records by bucket key (one per process; a restarted peer may have two for a while). */
  private readonly records = new Map<string, Member>();
  /** Average per iteration and peer (the latest evaluation wins). */
  readonly scores = new Map<number, Map<string, number>>();
  readonly deadLetters: { at: number; reason: string; detail: string; subject: string }[] = [];
  private readonly peers = new Map<string, PeerSeen>();
  private readonly arrivals: { at: number; kind: string }[] = [];
  private readonly cost = new CostBook();
  done = false;
  /** The coordinator's lease as last seen: who leads, since when, with which fencing token. */
  leader?: LeaseRecord;

  constructor(readonly experiment: string) {}

  /** A message of the experiment, seen at `at` (its arrival here; stored ones carry their own time where they have one). */
  add(m: Message, at: number): void {
    this.arrivals.push({ at, kind: m.type });
    switch (m.type) {
      case "candidates": {
        this.iteration(m.iteration).candidates++;
        this.seen(m.author).lastCandidateAt = Math.max(this.seen(m.author).lastCandidateAt ?? 0, m.createdAt);
        break;
      }
      case "verdict":
        this.iteration(m.iteration).verdicts += judgementsIn(m);
        this.seen(m.judge).lastVerdictAt = Math.max(this.seen(m.judge).lastVerdictAt ?? 0, m.createdAt);
        break;
      case "pair":
        this.iteration(m.iteration).pairs++;
        break;
      case "evaluation": {
        const s = this.scores.get(m.iteration) ?? new Map<string, number>();
        s.set(m.peer, m.average);
        this.scores.set(m.iteration, s);
        break;
      }
      case "lease":
        if (!this.leader || m.token >= this.leader.token) this.leader = m;
        break;
      case "dead_letter":
        this.deadLetters.push({ at: m.at, reason: m.reason, detail: m.detail, subject: m.subject });
        if (this.deadLetters.length > 50) this.deadLetters.shift();
        break;
      case "control":
        switch (m.event) {
          case "iteration_opened": {
            const it = this.iteration(m.iteration);
            it.peers = m.peers;
            it.prompts = m.prompts;
            it.openedAt = m.at;
            break;
          }
          case "iteration_closed":
            this.iteration(m.iteration).closed = { voted: m.voted, pairs: m.pairs };
            break;
          case "training_done": {
            const it = this.iteration(m.iteration);
            if (!it.trained.includes(m.peer)) it.trained.push(m.peer);
            this.cost.trainingDone(m);
            break;
          }
          case "experiment_done":
            this.done = true;
            break;
        }
        break;
    }
  }

  /** A member record under its bucket key (undefined: deleted, that process left). */
  member(key: string, record: Member | undefined): void {
    if (record) this.records.set(key, record);
    else this.records.delete(key);
  }

  /** Each peer's freshest record: the process that heartbeated last. */
  get members(): Map<string, Member> {
    const out = new Map<string, Member>();
    for (const r of this.records.values()) {
      const had = out.get(r.peer);
      if (!had || r.heartbeatAt > had.heartbeatAt) out.set(r.peer, r);
    }
    return out;
  }

  /** Model cost per iteration, member and phase (finished iterations' from training_done, the running one's from heartbeats). */
  costs(): CostRow[] {
    return this.cost.rows(this.records.values(), (n) => this.iterations.get(n)?.prompts ?? 0);
  }

  /** What a member is doing at `now`. */
  doing(peer: string, now: number): string {
    const m = this.members.get(peer);
    if (!m) return "not running";
    if (m.state === "leaving") return "leaving";
    if (m.activity?.doing === "training") return `training ${m.activity.done}/${m.activity.total}`;
    if (m.activity?.doing === "evaluating") return "evaluating";
    const seen = this.peers.get(peer);
    const busy: string[] = [];
    if (seen?.lastCandidateAt && now - seen.lastCandidateAt < BUSY_MS) busy.push("answering");
    if (seen?.lastVerdictAt && now - seen.lastVerdictAt < BUSY_MS) busy.push("judging");
    return busy.length ? busy.join(" + ") : "idle";
  }

  /** Messages per second of each kind over the last {@link RATE_WINDOW_MS}. */
  rates(now: number): Record<string, number> {
    while (this.arrivals.length && now - this.arrivals[0]!.at > RATE_WINDOW_MS) this.arrivals.shift();
    const out: Record<string, number> = {};
    for (const a of this.arrivals) out[a.kind] = (out[a.kind] ?? 0) + 1000 / RATE_WINDOW_MS;
    return out;
  }

  /** The iteration shown: the highest one opened (closed ones show their pairs and who has trained). */
  current(): IterationProgress | undefined {
    const open = [...this.iterations.values()].filter((i) => i.prompts > 0).sort((a, b) => b.iteration - a.iteration);
    return open[0];
  }

  private iteration(n: number): IterationProgress {
    let it = this.iterations.get(n);
    if (!it) {
      it = { iteration: n, peers: [], prompts: 0, candidates: 0, verdicts: 0, pairs: 0, trained: [] };
      this.iterations.set(n, it);
    }
    return it;
  }

  private seen(peer: string): PeerSeen {
    let s = this.peers.get(peer);
    if (!s) this.peers.set(peer, (s = {}));
    return s;
  }
}

/**
 * The judgements a verdict message carries: one per author judged, as one message covers every
 * author the judge had for the prompt. What pop watch, the dashboard and the demo count, so
 * their numbers agree.
 */
export function judgementsIn(verdict: MessageOf<"verdict">): number {
  return verdict.authors.length;
}

/**
 * Candidate batches and judgements ({@link judgementsIn}) a full iteration has: every peer answers
 * every prompt, and each author's answers are judged by `judgesPerAuthor` of the other peers.
 */
export function expectedCounts(
  it: Pick<IterationProgress, "prompts" | "peers">,
  judgesPerAuthor: number | "all" = "all",
): { candidates: number; verdicts: number } {
  const n = it.peers.length;
  const judges = judgesPerAuthor === "all" ? Math.max(0, n - 1) : Math.min(judgesPerAuthor, Math.max(0, n - 1));
  return { candidates: it.prompts * n, verdicts: it.prompts * n * judges };
}
