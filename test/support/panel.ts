/**
 * The end-to-end fixture: NATS servers (test/support/networks.ts), an experiment with a tiny-world
 * prompt pool, and the coordinator and actors as separate `pop` processes, exactly as users run
 * them. A panel owns all of it and ends it in one place, processes first, then the servers:
 *
 *   await using panel = await startPanel(settings, overrides);
 *
 * Inside a test it also ends when the test finishes (test/support/lifetime.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { COORDINATOR_IDENTITY } from "../../deploy/ops/creds.ts";
import { createExperiment, experimentConfig, loadTinyPool, type DemoSettings, type PoolSummary } from "../../deploy/ops/experiment.ts";
import { PopProcess } from "../../deploy/cli/processes.ts";
import {
  BUCKETS,
  STREAMS,
  TrainingConfig,
  readRecord,
  readStored,
  stateKeys,
  subjects,
  type ExperimentConfig,
  type MessageType,
  type MessageOf,
} from "../../protocol/mod.ts";
import { endWithTest, once } from "./lifetime.ts";
import { SingleServer, type PanelNetwork } from "./networks.ts";
import { removeScratch, scratchDir } from "./scratch.ts";

/** What {@link startPanel} sets up besides the experiment's settings. */
export interface PanelOptions<N extends PanelNetwork> {
  /** Extra flags of every actor started with startActor/startServedActor (e.g. `--batch 4`). */
  actorArgs?: string[];
  /** Benchmark items an actor started with startActor evaluates (default 20). */
  benchItems?: number;
  /** The servers; the panel owns them from here on (default: one server of its own). */
  network?: N;
  /** Where logs and checkpoints go: a given directory is left to its owner; by default a scratch directory, removed with the panel. */
  dir?: string;
}

/** A running panel; `await using` (or dispose()) stops everything it started. */
export interface Panel<N extends PanelNetwork = SingleServer> extends AsyncDisposable {
  network: N;
  /** The test's own connection, with the coordinator's rights. */
  nc: NatsConnection;
  dir: string;
  config: ExperimentConfig;
  /** The tiny-world prompts loaded for every iteration. */
  pool: PoolSummary;
  processes: Map<string, PopProcess>;
  /** Random-weight checkpoints of `names` in the panel's directory (see {@link randomCheckpoints}). */
  randomCheckpoints(names: string[]): Promise<Record<string, string>>;
  /** A coordinator process; `extra` flags such as `--instance coord-b` for a second one. */
  startCoordinator(extra?: string[]): PopProcess;
  startActor(peer: string, checkpoint: string, instance?: string, extra?: string[]): PopProcess;
  /** A peer whose model is served by an OpenAI-compatible server at `baseUrl`. */
  startServedActor(peer: string, baseUrl: string, model: string, extra?: string[]): PopProcess;
  /** Any pop command as its own process (e.g. `serve`), stopped with the panel. */
  spawn(name: string, args: string[]): PopProcess;
  stored<T extends MessageType>(kind: "prompt" | "cand" | "verdict" | "pair" | "eval" | "ctl", type: T): Promise<MessageOf<T>[]>;
  control(): Promise<MessageOf<"control">[]>;
  iterationPeers(iteration: number): Promise<string[] | undefined>;
  waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  /** The last `lines` of every process's log, for a failure message. */
  logTails(lines?: number): string;
  dispose(): Promise<void>;
}

/** Voting that keeps a pair for every prompt (thresholds at zero), so counts are exact in flow tests. */
export const VOTE_EVERY_PROMPT = {
  minChosen: 0,
  minMargin: 0,
  selfJudging: false,
  pairing: "pooled",
  combine: "mean",
  minJudges: 1,
  aggregate: "mean",
} as const;

/**
 * Training for flow tests, where what counts is that every member trains once per iteration, not
 * what it learns: one pass over the pairs instead of the default three, a third of the time.
 */
export const TRAIN_ONE_EPOCH = TrainingConfig.parse({ epochs: 1 });

/** Random-weight checkpoints: real models that need no pretraining, for flow tests. Seeds follow the order of `names`. */
export async function randomCheckpoints(dir: string, names: string[]): Promise<Record<string, string>> {
  mkdirSync(dir, { recursive: true });
  const out: Record<string, string> = {};
  for (const [i, name] of names.entries()) {
    const b = await TinyBackend.create(101 + i);
    out[name] = join(dir, `${name}.bin`);
    writeFileSync(out[name]!, await b.exportWeights());
    await b.dispose();
  }
  return out;
}

/**
 * Starts a panel: the network (one server unless given), the topology, the tiny pool for every
 * iteration's prompts and the experiment. No processes yet: the test starts them in its order.
 */
export async function startPanel<N extends PanelNetwork = SingleServer>(
  settings: DemoSettings,
  overrides: Parameters<typeof experimentConfig>[1],
  options: PanelOptions<N> = {},
): Promise<Panel<N>> {
  const dir = options.dir ?? scratchDir("pop-e2e-");
  const processes = new Map<string, PopProcess>();
  let network: N | undefined = options.network;
  let nc: NatsConnection | undefined;
  const dispose = once(async () => {
    await Promise.all([...processes.values()].map((p) => p.stop(5000)));
    await nc?.close().catch(() => undefined);
    await network?.dispose();
    if (!options.dir) removeScratch(dir);
  });
  endWithTest(dispose);
  try {
    network ??= (await SingleServer.start()) as PanelNetwork as N;
    nc = await network.admin("e2e");
    const pool = await loadTinyPool(nc, settings.poolSeed, settings.iterations * settings.promptsPerIteration, settings.experiment);
    const { config } = await createExperiment(nc, experimentConfig(settings, overrides));
    const kv = await new Kvm(nc).open(BUCKETS.state);
    return panelOf(network, nc, kv, dir, config, pool, processes, options, dispose);
  } catch (error) {
    await dispose();
    throw error;
  }
}

function panelOf<N extends PanelNetwork>(
  network: N,
  nc: NatsConnection,
  kv: KV,
  dir: string,
  config: ExperimentConfig,
  pool: PoolSummary,
  processes: Map<string, PopProcess>,
  options: PanelOptions<N>,
  dispose: () => Promise<void>,
): Panel<N> {
  const as = (identity: string) => [...network.flags(identity), "--experiment", config.experiment];
  const actorArgs = options.actorArgs ?? [];
  const filterOf = (kind: string) => subjects.all(config.experiment, kind as "cand");
  const streamOf = {
    prompt: STREAMS.prompts,
    cand: STREAMS.candidates,
    verdict: STREAMS.verdicts,
    pair: STREAMS.pairs,
    eval: STREAMS.evaluations,
    ctl: STREAMS.control,
  };
  const panel: Panel<N> = {
    network,
    nc,
    dir,
    config,
    pool,
    processes,
    randomCheckpoints: (names) => randomCheckpoints(join(dir, "ckpt"), names),
    startCoordinator(extra = []) {
      return panel.spawn("coordinator", ["coordinator", ...as(COORDINATOR_IDENTITY), ...extra]);
    },
    startActor(peer, checkpoint, instance, extra = []) {
      const args = [
        "actor",
        "--peer",
        peer,
        "--checkpoint",
        checkpoint,
        "--bench-items",
        String(options.benchItems ?? 20),
        ...as(peer),
        ...actorArgs,
        ...extra,
      ];
      if (instance) args.push("--instance", instance);
      return panel.spawn(peer, args);
    },
    startServedActor(peer, baseUrl, model, extra = []) {
      return panel.spawn(peer, ["actor", "--peer", peer, "--backend", "openai", "--base-url", baseUrl, "--model", model, ...as(peer), ...actorArgs, ...extra]);
    },
    spawn(name, args) {
      const key = `${name}-${processes.size}`;
      const p = new PopProcess(name, args, join(dir, `${key}.log`));
      processes.set(key, p);
      return p;
    },
    async stored(kind, type) {
      return (await readStored(nc, streamOf[kind].name, filterOf(kind), type)).messages;
    },
    control() {
      return panel.stored("ctl", "control");
    },
    async iterationPeers(iteration) {
      return (await readRecord(kv, stateKeys.iteration(config.experiment, iteration), "iteration"))?.peers;
    },
    async waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 240_000): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        // A process that died on its own (not killed by the test) fails the test at once, with its log.
        const dead = [...processes.values()].find((p) => !p.running && p.child.signalCode === null && p.child.exitCode !== 0);
        if (dead) throw new Error(`${dead.name} exited with code ${dead.child.exitCode} while waiting for ${what}:\n${dead.logTail()}`);
        const v = await check();
        if (v) return v;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    },
    logTails(lines = 15) {
      return [...processes.values()].map((p) => `--- ${p.name}\n${p.logTail(lines)}`).join("\n");
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
  return panel;
}

/** Sends SIGSTOP/SIGCONT: freezes a process without it noticing (its heartbeats stop too). */
export function freeze(p: PopProcess, frozen: boolean): void {
  p.child.kill(frozen ? "SIGSTOP" : "SIGCONT");
}
