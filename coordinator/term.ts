/**
 * One leader's term of the coordinator (coordinator.ts runs terms while it holds the lease):
 * lightweight and restartable. It opens iterations and feeds prompts, knows the
 * panel from the membership bucket, votes prompts into preference pairs as their verdicts come
 * in, closes the iteration, waits for the panel to train (all of it, or a quorum once the
 * deadline passes) and advances. Its progress lives in the state bucket; everything else is
 * re-read from the streams on start, exactly as after a restart. Every publication and state
 * write first asks the lease for its fencing token: once the lease is lost, nothing goes out.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  BUCKETS,
  Bitset,
  PROTOCOL_VERSION,
  PoolDigestError,
  PoolReader,
  PopError,
  STREAMS,
  controlEvent,
  readRecord,
  encode,
  ensureTopology,
  ensureWeightsBucket,
  isKeyExists,
  isTooLarge,
  openBlobs,
  publishMessage,
  stateKeys,
  subjects,
  type ExperimentConfig,
  type IterationRecord,
  type MessageOf,
  type Progress,
  type PromptRange,
  followAdmitted,
  visitStored,
  jetStreamOf,
  kvmOf,
  type Follower,
  JudgeAssignment,
  type Verdict,
  type FenceView,
  type Message,
  type Published,
} from "../protocol/mod.ts";
import { IterationCollector } from "./collector.ts";
import { IterationPrompts } from "./iteration-prompts.ts";
import { MembershipView } from "./membership.ts";
import type { CoordinatorLease } from "./lease.ts";
import { judgesPerAuthorWarnings } from "./voting.ts";

/** The experiment or its pool is missing or inconsistent; fix the set-up and start again. */
export class CoordinatorSetupError extends PopError {}

/**
 * The server refused to store a record for its size (over its max_payload or the bucket's
 * largest value). Not retryable: the record, or the server's limit, must change.
 */
export class RecordTooLargeError extends PopError {}

export interface TermOptions {
  nc: NatsConnection;
  experiment: string;
  log: Logger;
  /** Stored as the experiment's config if none exists yet; an existing config wins. */
  config?: ExperimentConfig;
  /** How often deadlines and heartbeats are checked (default 500 ms). */
  tickMs?: number;
  /** The lease this term holds. */
  lease: CoordinatorLease;
  /** The readers' view of the lease: stale coordinator messages are not counted. */
  fence: FenceView;
}

/** An iteration's progress as the leader sees it (counts are of the open iteration; 0 once it closed). */
export interface IterationFigures {
  iteration: number;
  phase: "collecting" | "training" | "done";
  /** Prompts in the iteration. */
  prompts: number;
  /** Prompts out so far (published by this term or, before a restart or takeover, an earlier one). */
  published: number;
  voted: number;
  pairs: number;
}

export class Term {
  private js!: JetStreamClient;
  private state!: KV;
  private blobs!: ObjectStore;
  private config!: ExperimentConfig;
  /** The experiment's pool, read a chunk at a time. */
  private pool!: PoolReader;
  private progress!: Progress;
  private members!: MembershipView;
  /** Members whose weights bucket is in place. */
  private readonly weightsBuckets = new Set<string>();
  private collector?: IterationCollector;
  /**
   * The open iteration's prompts in pool order, how many of them this term has gone through (the
   * window's front), and which an earlier term published (by position in the iteration).
   */
  private window?: { prompts: IterationPrompts; published: number; out: Bitset };
  private record?: IterationRecord;
  private readonly trained = new Map<number, Set<string>>();
  /** Who took part in each opened iteration: only they may speak for it, also after it closed. */
  private readonly rosters = new Map<number, ReadonlySet<string>>();
  /** Who judges whose candidates in each opened iteration: a verdict on any other author is dead-lettered. */
  private readonly assignments = new Map<number, JudgeAssignment>();
  /** The stream followers (control, evaluations, candidates, verdicts, pairs); the open iteration's collector is fed by them. */
  private readonly followers: Follower[] = [];
  private phaseSince = Date.now();
  private kick?: () => void;
  private waitingLogged = "";

  constructor(private readonly options: TermOptions) {}

  /** Publishes with the lease's fencing token; throws LeaseLostError once the lease is lost. */
  private publish(message: Message): Promise<Published> {
    return publishMessage(this.js, message, { fence: this.options.lease.fence() });
  }

  /**
   * Runs until the experiment is done or `signal` aborts; throws LeaseLostError when the lease
   * is lost (nothing more has been published by then).
   */
  async run(signal?: AbortSignal): Promise<void> {
    const lost = this.options.lease.lost;
    const tick = this.options.tickMs ?? 500;
    signal?.addEventListener("abort", () => this.kick?.(), { once: true });
    lost.addEventListener("abort", () => this.kick?.(), { once: true });
    try {
      // Inside the try: a set-up that fails half-way (a cluster still electing leaders) closes
      // the followers and the membership watch it had opened before the coordinator tries again.
      await this.setUp();
      while (!signal?.aborted && !this.done) {
        if (lost.aborted) throw lost.reason;
        try {
          await this.step();
        } catch (error) {
          // A server outage mid-step (a publish or KV write that cannot complete) must not end
          // the coordinator: every step can be repeated, so it waits and tries again.
          if (error instanceof PopError && !error.retryable) throw error;
          this.options.log.warn({ err: error }, "could not advance (is the NATS server reachable?); trying again");
          await new Promise((r) => setTimeout(r, 2000));
          continue;
        }
        if (this.done) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, tick);
          this.kick = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.kick = undefined;
      }
    } finally {
      await Promise.all(this.followers.map((f) => f.close()));
      // Unset when the set-up failed before it.
      (this.members as MembershipView | undefined)?.stop();
    }
  }

  /** The iteration the coordinator is at (undefined before it has read its progress). */
  get iteration(): number | undefined {
    return this.progress?.iteration;
  }

  get done(): boolean {
    return this.progress.phase === "done";
  }

  /** Where the open iteration stands, for metrics (undefined before the progress is read). */
  get figures(): IterationFigures | undefined {
    if (!this.progress) return undefined;
    const status = this.collector?.status;
    return {
      iteration: this.progress.iteration,
      phase: this.progress.phase,
      prompts: this.record?.prompts.count ?? 0,
      published: this.window?.published ?? 0,
      voted: status?.voted ?? 0,
      pairs: status?.pairs ?? 0,
    };
  }

  private async setUp(): Promise<void> {
    const { nc, experiment, log } = this.options;
    // The topology is in place (Coordinator.run ensured it before the lease); the config's limits are set below.
    this.js = jetStreamOf(nc);
    const kvm = kvmOf(nc);
    this.state = await kvm.open(BUCKETS.state);
    this.blobs = await openBlobs(nc);
    this.config = await this.loadConfig();
    // Again with the config's limits: the coordinator's key is the one that sets them.
    await ensureTopology(nc, { limits: this.config.limits });
    for (const warning of judgesPerAuthorWarnings(this.config.voting, this.config.judging.judgesPerAuthor)) log.warn({ judging: this.config.judging }, warning);
    this.pool = await this.loadPool();
    const stored = await readRecord(this.state, stateKeys.progress(experiment), "progress");
    this.progress = stored ?? { v: PROTOCOL_VERSION, type: "progress", experiment, iteration: 0, phase: "training", at: Date.now() };
    for (let i = 1; i <= this.progress.iteration; i++) {
      const r = await readRecord(this.state, stateKeys.iteration(experiment, i), "iteration");
      if (r) this.remember(r);
    }
    this.members = new MembershipView(await kvm.open(BUCKETS.members), experiment, this.config.heartbeat.lapseMs, log);
    await this.members.start(() => this.kick?.());
    // The collector first: the followers' replay hands it its iteration's messages.
    if (this.progress.phase === "collecting") {
      this.record = await this.loadRecord(this.progress.iteration);
      await this.startCollector(this.record);
    }
    await this.followControl();
    log.info(
      { experiment, iteration: this.progress.iteration, phase: this.progress.phase, iterations: this.config.iterations },
      stored ? "coordinator resumed" : "coordinator started",
    );
  }

  /** An opened iteration's roster and judge assignment. */
  private remember(record: IterationRecord): void {
    this.rosters.set(record.iteration, new Set(record.peers));
    this.assignments.set(record.iteration, JudgeAssignment.of(this.config, record));
  }

  /** What is wrong with a verdict on an author its judge was not assigned (protocol/judges.ts). */
  private unassigned(v: Verdict): string | undefined {
    const assignment = this.assignments.get(v.iteration);
    if (!assignment || assignment.all) return undefined;
    const others = v.authors.filter((a) => a !== v.judge && !assignment.assigned(v.promptId, v.judge, a));
    if (others.length === 0) return undefined;
    return `'${v.judge}' scores ${others.join(", ")} on prompt ${v.promptId}, which it was not assigned (it judges ${assignment.authorsOf(v.promptId, v.judge).join(", ") || "nobody"})`;
  }

  private async loadConfig(): Promise<ExperimentConfig> {
    const key = stateKeys.config(this.options.experiment);
    const existing = await readRecord(this.state, key, "experiment");
    if (existing) return existing;
    const config = this.options.config;
    if (!config)
      throw new CoordinatorSetupError(`experiment '${this.options.experiment}' has no config on this server; pass one (pop coordinator --config FILE)`);
    if (config.experiment !== this.options.experiment)
      throw new CoordinatorSetupError(`the config is for experiment '${config.experiment}', not '${this.options.experiment}'`);
    await this.state.put(key, encode(config));
    return config;
  }

  /**
   * The config's pool, checked against the digest the config pins (protocol/pool.ts). A config
   * written without one is pinned now, to the pool as it is, so every later read is checked; a
   * pool stored before chunks had digests cannot be pinned and is read unverified, with a warning.
   */
  private async loadPool(): Promise<PoolReader> {
    const { log, experiment } = this.options;
    let pool: PoolReader | undefined;
    try {
      pool = await PoolReader.open(this.blobs, this.config.pool.name, this.config.pool);
    } catch (error) {
      if (error instanceof PoolDigestError) log.error({ err: error, pool: this.config.pool.name }, error.message);
      throw error;
    }
    if (pool && this.config.pool.sha256 === undefined) {
      if (pool.verifiable) {
        this.options.lease.fence();
        this.config = { ...this.config, pool: { ...this.config.pool, sha256: pool.sha256 } };
        await this.state.put(stateKeys.config(experiment), encode(this.config));
        log.info({ pool: pool.name, sha256: pool.sha256 }, "pinned the prompt pool's digest in the experiment config");
      } else {
        log.warn(
          { pool: pool.name },
          "the prompt pool was stored before its chunks had digests; reading it unverified (store it again with pop pool --replace to pin it)",
        );
      }
    }
    if (!pool)
      throw new CoordinatorSetupError(
        `prompt pool '${this.config.pool.name}' is not in the object store; load it first: pop pool --from FILE.jsonl --name NAME for your own prompts, pop pool --seed <N> --count <N> for the tiny world`,
      );
    const need = this.config.pool.offset + this.config.iterations * this.config.promptsPerIteration;
    if (pool.count < need) {
      throw new CoordinatorSetupError(
        `prompt pool '${pool.name}' has ${pool.count} prompts; ${this.config.iterations} iterations of ${this.config.promptsPerIteration} from offset ${this.config.pool.offset} need ${need}`,
      );
    }
    return pool;
  }

  private async loadRecord(iteration: number): Promise<IterationRecord> {
    const record = await readRecord(this.state, stateKeys.iteration(this.options.experiment, iteration), "iteration");
    if (!record) throw new CoordinatorSetupError(`progress says iteration ${iteration} is open but it has no record`);
    return record;
  }

  /**
   * Training reports come from the control stream, replayed from the start on every run. A
   * control event counts only from the identity its subject carries (permissions bind subjects to
   * credentials); step() counts training only from the iteration's members. The evaluations are
   * followed too, so that a bad one is dead-lettered rather than silently left for reports.
   */
  private async followControl(): Promise<void> {
    const { nc, experiment, log } = this.options;
    const deadLetterAs = `${experiment}-coordinator`;
    this.followers.push(
      await followAdmitted({
        nc,
        stream: STREAMS.control.name,
        filter: subjects.all(experiment, "ctl"),
        types: ["control"],
        fence: this.options.fence,
        deadLetterAs,
        log,
        // A member's report about an iteration must come from one of that iteration's members.
        roster: (m) =>
          m.type === "control" && "iteration" in m && "peer" in m && this.record?.iteration === m.iteration ? new Set(this.record.peers) : undefined,
        handle: async (e) => {
          if (e.event === "gave_up") {
            this.options.log.warn(
              { iteration: e.iteration, peer: e.peer, promptId: e.promptId, work: e.work, author: e.author, reason: e.reason },
              "a member gave up on this work; not waiting for it",
            );
            await this.collector?.excuse(e);
            return;
          }
          if (e.event !== "training_done") return;
          const set = this.trained.get(e.iteration) ?? new Set<string>();
          set.add(e.peer);
          this.trained.set(e.iteration, set);
          this.kick?.();
        },
      }),
    );
    this.followers.push(
      await followAdmitted({
        nc,
        stream: STREAMS.evaluations.name,
        filter: subjects.all(experiment, "eval"),
        types: ["evaluation"],
        deadLetterAs,
        log,
        handle: () => undefined,
      }),
    );
    // Candidates and verdicts: every one is admitted here (nobody speaks for an iteration not yet
    // opened; forged, late and early ones are dead-lettered), and the open iteration's go on to
    // its collector: one reader per stream, so each is received and parsed once.
    const roster = (m: { iteration?: number }) => (m.iteration === undefined ? undefined : (this.rosters.get(m.iteration) ?? new Set<string>()));
    for (const [stream, kind, type] of [
      [STREAMS.candidates.name, "cand", "candidates"],
      [STREAMS.verdicts.name, "verdict", "verdict"],
    ] as const) {
      this.followers.push(
        await followAdmitted({
          nc,
          stream,
          filter: subjects.all(experiment, kind),
          types: [type],
          deadLetterAs,
          log,
          roster: (m) => roster(m as { iteration?: number }),
          check: (m) => (m.type === "verdict" ? this.unassigned(m) : undefined),
          handle: (m) => this.collector?.accept(m as MessageOf<"candidates" | "verdict">),
        }),
      );
    }
    // Pairs are read by the members when they train; a bad one published after that is still judged here.
    this.followers.push(
      await followAdmitted({
        nc,
        stream: STREAMS.pairs.name,
        filter: subjects.all(experiment, "pair"),
        types: ["pair"],
        fence: this.options.fence,
        deadLetterAs,
        log,
        handle: () => undefined,
      }),
    );
  }

  /**
   * Every live member gets its own weights bucket with its share (limits.weightsBytes) before it
   * trains: a peer's key may write only that bucket and may not create it, so that no member
   * sets its own share (protocol/weights.ts).
   */
  private async ensureWeightsBuckets(): Promise<void> {
    for (const peer of this.members.alive()) {
      if (this.weightsBuckets.has(peer)) continue;
      await ensureWeightsBucket(this.options.nc, this.options.experiment, peer, this.config.limits);
      this.weightsBuckets.add(peer);
    }
  }

  private async saveProgress(iteration: number, phase: Progress["phase"]): Promise<void> {
    this.options.lease.fence();
    this.progress = { v: PROTOCOL_VERSION, type: "progress", experiment: this.options.experiment, iteration, phase, at: Date.now() };
    await this.state.put(stateKeys.progress(this.options.experiment), encode(this.progress));
    this.phaseSince = Date.now();
  }

  private async step(): Promise<void> {
    const { log, experiment } = this.options;
    await this.members.confirm();
    await this.ensureWeightsBuckets();
    for (const m of this.members.newlyLapsed()) {
      log.warn({ peer: m.peer, instance: m.instance }, "heartbeat lapsed; going on without it");
      await this.publish(controlEvent(experiment, "peer_left", { peer: m.peer, instance: m.instance, reason: "lapsed" }));
    }
    const n = this.progress.iteration;
    if (this.progress.phase === "collecting") {
      // Opening can fail after the progress was saved (an outage); the repeat starts its collector.
      if (!this.collector) await this.startCollector((this.record = await this.loadRecord(n)));
      await this.publishWindow();
      await this.collector!.sweep();
      if (this.collector!.complete) await this.close(n);
      return;
    }
    if (this.progress.phase !== "training") return;
    const alive = this.members.alive();
    if (n > 0) {
      const record = this.record ?? (this.record = await this.loadRecord(n));
      const expected = record.peers.filter((p) => alive.has(p));
      const done = this.trained.get(n) ?? new Set();
      const missing = expected.filter((p) => !done.has(p));
      const quorum = Math.ceil(this.config.deadlines.trainQuorum * expected.length);
      const overdue = Date.now() - this.phaseSince > this.config.deadlines.trainMs;
      const trainedLive = expected.length - missing.length;
      if (expected.length === 0 || (missing.length > 0 && !(overdue && trainedLive >= quorum))) {
        this.waiting(`iteration ${n}: waiting for training of ${missing.join(", ") || "a live panel"}`);
        return;
      }
      if (missing.length) log.warn({ iteration: n, missing }, "training deadline passed; advancing with the quorum");
      if (n >= this.config.iterations) {
        await this.publish(controlEvent(experiment, "experiment_done", { iterations: n }));
        await this.saveProgress(n, "done");
        log.info({ iterations: n }, "experiment done");
        return;
      }
    }
    const needed = n === 0 ? this.config.minPeers : this.config.minPeersToContinue;
    if (alive.size < needed) {
      this.waiting(`waiting for peers: ${alive.size} of ${needed} alive (${[...alive].join(", ") || "none"})`);
      return;
    }
    await this.open(n + 1, [...alive].sort());
  }

  private waiting(what: string): void {
    if (this.waitingLogged === what) return;
    this.waitingLogged = what;
    this.options.log.info(what);
  }

  /** The iteration's stretch of the pool. */
  private rangeOf(iteration: number): PromptRange {
    const { promptsPerIteration, pool } = this.config;
    return { pool: pool.name, offset: pool.offset + (iteration - 1) * promptsPerIteration, count: promptsPerIteration };
  }

  private async open(iteration: number, peers: string[]): Promise<void> {
    const { experiment, log } = this.options;
    const key = stateKeys.iteration(experiment, iteration);
    const fresh: IterationRecord = {
      v: PROTOCOL_VERSION,
      type: "iteration",
      experiment,
      iteration,
      peers,
      prompts: this.rangeOf(iteration),
      openedAt: Date.now(),
    };
    let record = fresh;
    const bytes = encode(fresh);
    try {
      this.options.lease.fence();
      await this.state.create(key, bytes);
    } catch (error) {
      if (isTooLarge(error)) {
        throw new RecordTooLargeError(
          `the server refused iteration ${iteration}'s record (${bytes.length} bytes, ${peers.length} peers; the server's max_payload is ${this.options.nc.info?.max_payload ?? "unknown"} bytes)`,
          { cause: error },
        );
      }
      // Anything but "the key exists" (an outage) is for step() to retry.
      if (!isKeyExists(error)) throw error;
      record = await this.loadRecord(iteration); // opened before a restart: keep who was in it
    }
    const prompts = record.prompts.count;
    this.record = record;
    this.remember(record);
    await this.saveProgress(iteration, "collecting");
    await this.publish(controlEvent(experiment, "iteration_opened", { iteration, peers: record.peers, prompts }));
    log.info({ iteration, peers: record.peers, prompts }, "iteration opened");
    await this.startCollector(record);
  }

  private async startCollector(record: IterationRecord): Promise<void> {
    // The record's pool is the config's unless the config was replaced meanwhile; the record wins.
    const pool = record.prompts.pool === this.pool.name ? this.pool : await PoolReader.open(this.blobs, record.prompts.pool);
    if (!pool) throw new CoordinatorSetupError(`iteration ${record.iteration}'s prompt pool '${record.prompts.pool}' is not in the object store`);
    if (pool.count < record.prompts.offset + record.prompts.count)
      throw new CoordinatorSetupError(
        `iteration ${record.iteration} has prompts ${record.prompts.offset} to ${record.prompts.offset + record.prompts.count} of pool '${pool.name}', which has ${pool.count}`,
      );
    const prompts = new IterationPrompts(pool, record.prompts, this.options.experiment, record.iteration);
    this.collector = undefined;
    const collector = new IterationCollector(
      this.options.nc,
      this.config,
      record,
      prompts,
      () => this.members.alive(),
      this.options.log,
      () => this.kick?.(),
      { publish: (m) => this.publish(m), fence: this.options.fence },
    );
    await collector.start();
    // In place before any prompt goes out, so that it sees every answer. After a restart the
    // window starts again from the front: republishing is harmless (same ids), and covers a
    // crash halfway through publishing (step() publishes what is still missing).
    this.collector = collector;
    // Prompts a term before this one published (admitted under the lease) are not published
    // again: with another fencing token they would be new messages, answered twice. One bit per
    // prompt, read one message at a time: a restart late in a million-prompt iteration holds 125 KB.
    const out = new Bitset(prompts.count);
    await visitStored(
      this.options.nc,
      STREAMS.prompts.name,
      subjects.prompt(this.options.experiment, record.iteration),
      "prompt",
      async (p) => {
        await prompts.prepare(p.promptId);
        const at = prompts.find(p.promptId)?.index;
        if (at !== undefined) out.set(at);
      },
      { fence: this.options.fence, begin: () => out.clear() },
    );
    this.window = { prompts, published: 0, out };
    await this.publishWindow(0);
  }

  /**
   * Publishes prompts until `openPrompts` are unvoted (voted ones leave every process's memory),
   * in pool order. Members answer in stream order, so the oldest open prompts are the next to
   * complete and the window keeps moving; a prompt nobody finishes is voted at its deadline.
   */
  private async publishWindow(voted = this.collector?.status.voted ?? 0): Promise<void> {
    const w = this.window;
    if (!w) return;
    const until = Math.min(w.prompts.count, voted + this.config.openPrompts);
    while (w.published < until) {
      const next = await w.prompts.slice(w.published, Math.min(until, w.published + 64));
      const from = w.published;
      await Promise.all(next.filter((_, i) => !w.out.has(from + i)).map((p) => this.publish(p)));
      w.published += next.length;
    }
  }

  private async close(iteration: number): Promise<void> {
    const status = this.collector!.status;
    // The collector goes last: if the announcement or the progress cannot be written, the next
    // step repeats the close with the collector still there.
    await this.publish(controlEvent(this.options.experiment, "iteration_closed", { iteration, pairs: status.pairs, voted: status.voted }));
    await this.saveProgress(iteration, "training");
    this.collector = undefined;
    this.window = undefined;
    this.options.log.info({ iteration, pairs: status.pairs, voted: status.voted }, "iteration closed; members train");
  }
}
