/**
 * A peer actor: one process serving one panel model. It joins an experiment on its own,
 * answers prompts, judges its peers' candidates, trains on each iteration's pairs and evaluates
 * itself. Several processes may serve the same peer: they share its durable consumers.
 */
import { KvWatchInclude } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  BUCKETS,
  consumers,
  ensureTopology,
  readRecord,
  recordOf,
  retrying,
  settlesWithin,
  stateKeys,
  readWeights,
  startInbox,
  WeightsDigestError,
  type ExperimentConfig,
  type ModelRecord,
  type Inbox,
  kvmOf,
} from "../protocol/mod.ts";
import { catchUp } from "./catch-up.ts";
import { canLoadWeights, type Evaluator, type ModelBackend } from "./models/contract.ts";
import { PeerContext } from "./context.ts";
import { ActorStartError } from "./errors.ts";
import { giveUp } from "./giving-up.ts";
import { Heartbeat } from "./membership.ts";
import { createRoles, stopRoles, type PeerRoles } from "./roles.ts";

/** Longest wait for one step of leaving that needs the server (which may be gone). */
const STOP_STEP_MS = 2_000;
/**
 * An idle peer checks for work never delivered to it (actors/catch-up.ts) once it has been idle
 * this long, then again after twice the gap each time it finds nothing (a check reads the open
 * iteration's candidates, which is much for a large iteration), up to the longest gap.
 */
const CATCH_UP_IDLE_MS = 15_000;
const CATCH_UP_FIRST_GAP_MS = 20_000;
const CATCH_UP_LONGEST_GAP_MS = 600_000;

export interface ActorOptions {
  nc: NatsConnection;
  experiment: string;
  /** The model identity; every process of the same model uses the same peer name. */
  peer: string;
  /** This process's name among the peer's processes (default: host and pid). */
  instance: string;
  backend: ModelBackend;
  /** Backend kind, shown in the membership record. */
  backendKind: string;
  /**
   * How the peer is benchmarked after each iteration (a benchmark file, a user's command);
   * default: the backend's own suites when it has them, else none.
   */
  evaluator?: Evaluator;
  log: Logger;
  /** How long to wait for the experiment to be created before giving up (default 60 s). */
  waitForExperimentMs?: number;
  /** Prompts per model call (default 32). */
  batchSize?: number;
}

export class PeerActor {
  private ctx?: PeerContext;
  private roles?: PeerRoles;
  private heartbeat?: Heartbeat;
  private inboxes: Inbox[] = [];
  private modelWatch?: { stop(): void };
  private catchUpTimer?: NodeJS.Timeout;
  private stopped = false;
  private latest?: number;

  constructor(private readonly options: ActorOptions) {}

  get context(): PeerContext | undefined {
    return this.ctx;
  }

  /** The latest iteration this peer has heard of in a control event (log lines carry it). */
  get latestIteration(): number | undefined {
    return this.latest;
  }

  async start(): Promise<void> {
    const o = this.options;
    const log = o.log;
    await retrying("checking the topology", () => ensureTopology(o.nc), log);
    const config = await waitForConfig(o.nc, o.experiment, o.waitForExperimentMs ?? 60_000, log);
    const evaluator = o.evaluator ?? (o.backend.evaluate ? { evaluate: () => o.backend.evaluate!() } : undefined);
    const ctx = await PeerContext.open({ nc: o.nc, experiment: o.experiment, peer: o.peer, instance: o.instance, backend: o.backend, log, config, evaluator });
    this.ctx = ctx;
    const roles = createRoles(ctx);
    this.roles = roles;
    ctx.modelVersion = (await o.backend.info()).version;
    const resumed = await retrying("loading the published weights", () => this.loadPublishedWeights(), log);
    this.heartbeat = new Heartbeat(ctx, o.backendKind, roles.training);
    await retrying("joining", () => this.heartbeat!.join(), log);
    log.info({ experiment: o.experiment, peer: o.peer, instance: o.instance, version: ctx.modelVersion, resumedFromIteration: resumed }, "joined");
    if (resumed === undefined) await retrying("publishing the first evaluation", () => roles.training.evaluate(0), log);

    const batchSize = o.batchSize ?? 32;
    this.inboxes.push(
      await retrying(
        "starting the control inbox",
        () =>
          startInbox(o.nc, {
            spec: consumers.peerControl(o.experiment, o.peer),
            types: ["control"],
            fence: ctx.fence,
            batchSize: 1,
            log,
            handler: async (batch) => {
              for (const d of batch) {
                const e = d.message;
                if ("iteration" in e) this.latest = Math.max(this.latest ?? 0, e.iteration);
                if (e.event === "iteration_closed") await roles.training.train(e.iteration);
                else if (e.event === "iteration_opened") log.info({ iteration: e.iteration, prompts: e.prompts, peers: e.peers }, "iteration opened");
                else if (e.event === "experiment_done") log.info({ iterations: e.iterations }, "experiment done");
              }
            },
          }),
        log,
      ),
      await retrying(
        "starting the candidates inbox",
        () =>
          startInbox(o.nc, {
            spec: consumers.peerCandidates(o.experiment, o.peer),
            types: ["candidates"],
            batchSize,
            log,
            handler: (batch) => roles.judging.handle(batch),
            skip: (subject) => roles.judging.skips(subject),
            gaveUp: (c, reason, detail) =>
              giveUp(ctx, reason, { iteration: c.iteration, promptId: c.promptId, work: "judge", author: c.author, reason: detail }),
          }),
        log,
      ),
      await retrying(
        "starting the prompts inbox",
        () =>
          startInbox(o.nc, {
            spec: consumers.peerPrompts(o.experiment, o.peer),
            types: ["prompt"],
            fence: ctx.fence,
            batchSize,
            log,
            handler: (batch) => roles.answering.handle(batch),
            gaveUp: (p, reason, detail) => giveUp(ctx, reason, { iteration: p.iteration, promptId: p.promptId, work: "answer", reason: detail }),
          }),
        log,
      ),
    );
    await retrying("following replicas' weights", () => this.followReplicaWeights(), log);
    this.startCatchUp(batchSize);
  }

  private startCatchUp(batchSize: number): void {
    const ctx = this.ctx!;
    const roles = this.roles!;
    const tried = new Set<string>();
    let running = false;
    let gap = CATCH_UP_FIRST_GAP_MS;
    let nextAt = 0;
    this.catchUpTimer = setInterval(() => {
      if (running || this.stopped) return;
      if (this.inboxes.some((i) => i.idleMs() < CATCH_UP_IDLE_MS)) {
        // Work is arriving: the next idle spell is checked soon again.
        gap = CATCH_UP_FIRST_GAP_MS;
        nextAt = 0;
        return;
      }
      if (Date.now() < nextAt) return;
      running = true;
      catchUp(ctx, roles, tried, batchSize)
        .then((r) => {
          const found = Boolean(r.answered || r.judged || r.trained);
          if (found) ctx.log.info(r, "caught up on undelivered work");
          gap = found ? CATCH_UP_FIRST_GAP_MS : Math.min(gap * 2, CATCH_UP_LONGEST_GAP_MS);
        })
        .catch((error) => ctx.log.warn({ err: error }, "could not check for undelivered work; will look again"))
        .finally(() => {
          running = false;
          nextAt = Date.now() + gap;
        });
    }, 5_000);
    this.catchUpTimer.unref();
  }

  /** Loads the weights this peer last published, if any; returns the iteration they include. */
  private async loadPublishedWeights(): Promise<number | undefined> {
    const ctx = this.ctx!;
    const record = await readRecord(ctx.state, stateKeys.model(ctx.experiment, ctx.peer), "model");
    if (!record) return undefined;
    if (record.modelVersion !== ctx.modelVersion && canLoadWeights(ctx.backend)) {
      const loaded = await this.readChecked(record);
      if (!loaded)
        throw new ActorStartError(`the weights of ${ctx.peer} for iteration ${record.iteration} (${record.object}) are missing from the object store`);
      await ctx.backend.importWeights(loaded);
      ctx.modelVersion = (await ctx.backend.info()).version;
    }
    ctx.modelIteration = record.iteration;
    return record.iteration;
  }

  /**
   * The weights a model record names, checked against its digest (protocol/weights.ts). A
   * mismatch is logged as an error and thrown ({@link WeightsDigestError}: never loaded, not
   * retried); a record from before digests loads unverified, with a warning.
   */
  private async readChecked(record: ModelRecord): Promise<Uint8Array | undefined> {
    const ctx = this.ctx!;
    try {
      const loaded = await readWeights(ctx.nc, record);
      if (loaded && !loaded.verified)
        ctx.log.warn(
          { iteration: record.iteration, object: record.object },
          "model record has no weights digest (written before weights had owners); loading unverified",
        );
      return loaded?.bytes;
    } catch (error) {
      if (error instanceof WeightsDigestError)
        ctx.log.error({ err: error, iteration: record.iteration, object: record.object, bucket: record.bucket }, error.message);
      throw error;
    }
  }

  /** Another process of this peer may train; load the weights it publishes. */
  private async followReplicaWeights(): Promise<void> {
    const ctx = this.ctx!;
    const backend = ctx.backend;
    if (!canLoadWeights(backend)) return;
    const watch = await ctx.state.watch({ key: stateKeys.model(ctx.experiment, ctx.peer), include: KvWatchInclude.UpdatesOnly });
    this.modelWatch = watch;
    (async () => {
      for await (const entry of watch) {
        const record = recordOf(entry, "model");
        if (!record) continue;
        // This process's own training: the watch can see its put before the training role sets
        // ctx.modelVersion, so the version alone would make it reload its own weights.
        if (record.instance === ctx.instance) continue;
        if (record.modelVersion === ctx.modelVersion) continue;
        let bytes: Uint8Array | undefined;
        try {
          bytes = await this.readChecked(record);
        } catch (error) {
          // Refused weights are not loaded; this process keeps the ones it has.
          if (error instanceof WeightsDigestError) continue;
          throw error;
        }
        if (!bytes) continue;
        await backend.importWeights(bytes);
        ctx.modelVersion = (await backend.info()).version;
        ctx.modelIteration = record.iteration;
        ctx.log.info({ iteration: record.iteration, version: ctx.modelVersion }, "loaded weights trained by another process of this peer");
      }
    })().catch((error) => ctx.log.warn({ err: error }, "stopped following replica weights"));
  }

  /**
   * Leaves cleanly: unfinished work goes back to the stream for redelivery, nothing is lost.
   * Takes a few seconds at most, also while a long training runs (it is not waited for: the
   * caller disposes the backend, which ends it) and when the server is gone (each step that needs
   * the server gives up after {@link STOP_STEP_MS}; the server redelivers unacked work anyway).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Synchronously, before anything else: the inboxes nak what they hold and ignore how the
    // handlers in progress end, so a training that a stop signal kills (its trainer command gets
    // the signal too) is redelivered, not dead-lettered as a failure.
    const inboxes = Promise.all(this.inboxes.map((i) => i.stop()));
    // Each role closes what it owns: prompts still gathering their batches are not judged any
    // more (the inbox handed them back), work waiting for a place is not started.
    if (this.roles) stopRoles(this.roles);
    clearInterval(this.catchUpTimer);
    this.modelWatch?.stop();
    this.ctx?.fence.stop();
    // One round trip tells whether the server is there; without it each step below would wait
    // out its bound. Offline, the steps still run (the heartbeat stops) but are not waited for.
    const reachable = await settlesWithin(this.options.nc.flush(), 1_000).catch(() => false);
    const bound = (step: Promise<unknown> | undefined) => (reachable && step ? settlesWithin(step, STOP_STEP_MS) : undefined);
    await bound(this.heartbeat?.leaving());
    await settlesWithin(inboxes, STOP_STEP_MS + 2_000);
    await bound(this.heartbeat?.leave());
    this.options.log.info({ peer: this.options.peer, serverReachable: reachable }, "left the experiment");
  }
}

async function waitForConfig(nc: NatsConnection, experiment: string, timeoutMs: number, log: Logger): Promise<ExperimentConfig> {
  const kv = await kvmOf(nc).open(BUCKETS.state);
  const deadline = Date.now() + timeoutMs;
  let told = false;
  while (true) {
    const config = await readRecord(kv, stateKeys.config(experiment), "experiment");
    if (config) return config;
    if (Date.now() > deadline) {
      throw new ActorStartError(
        `experiment '${experiment}' does not exist on this server (waited ${Math.round(timeoutMs / 1000)} s). Start the coordinator for it first, or check --experiment.`,
      );
    }
    if (!told) {
      log.info({ experiment }, "waiting for the experiment to be created");
      told = true;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
