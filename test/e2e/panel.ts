/**
 * End-to-end test support: a real nats-server, an experiment with a tiny-world prompt pool,
 * and the coordinator and actors as separate `pop` processes, exactly as users run them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { createExperiment, experimentConfig, loadTinyPool, type DemoSettings } from "../../deploy/ops/experiment.ts";
import type { NatsServer } from "../../deploy/ops/nats-server.ts";
import { PopProcess } from "../../deploy/cli/processes.ts";
import {
  BUCKETS, STREAMS, ensureTopology, readRecord, readStored, stateKeys, subjects, type ExperimentConfig, type MessageType, type MessageOf,
} from "../../protocol/mod.ts";
import { connectTo, startServer } from "../support/nats.ts";

export interface Panel {
  url: string;
  /** The panel's nats-server (to stop, kill or restart it). */
  server: NatsServer;
  nc: NatsConnection;
  dir: string;
  config: ExperimentConfig;
  processes: Map<string, PopProcess>;
  startCoordinator(): PopProcess;
  startActor(peer: string, checkpoint: string, instance?: string): PopProcess;
  /** A peer whose model is served by an OpenAI-compatible server at `baseUrl`. */
  startServedActor(peer: string, baseUrl: string, model: string, extra?: string[]): PopProcess;
  /** Any pop command as its own process (e.g. `serve`), stopped with the panel. */
  spawn(name: string, args: string[]): PopProcess;
  stored<T extends MessageType>(kind: "prompt" | "cand" | "verdict" | "pair" | "eval" | "ctl", type: T): Promise<MessageOf<T>[]>;
  control(): Promise<MessageOf<"control">[]>;
  iterationPeers(iteration: number): Promise<string[] | undefined>;
  waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  dispose(): Promise<void>;
}

/** Voting that keeps a pair for every prompt (thresholds at zero), so counts are exact in flow tests. */
export const VOTE_EVERY_PROMPT = { minChosen: 0, minMargin: 0, selfJudging: false, pairing: "pooled", combine: "mean", minJudges: 1, aggregate: "mean" } as const;

/** Random-weight checkpoints: real models that need no pretraining, for flow tests. */
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

export async function startPanel(settings: DemoSettings, overrides: Parameters<typeof experimentConfig>[1], actorArgs: string[] = []): Promise<Panel> {
  const server = await startServer();
  const nc = await connectTo(server.url, "e2e");
  const dir = mkdtempSync(join(tmpdir(), "pop-e2e-"));
  await ensureTopology(nc);
  await loadTinyPool(nc, settings.poolSeed, settings.iterations * settings.promptsPerIteration, settings.experiment);
  const { config } = await createExperiment(nc, experimentConfig(settings, overrides));
  const processes = new Map<string, PopProcess>();
  const common = ["--server", server.url, "--experiment", config.experiment];
  const kv = await new Kvm(nc).open(BUCKETS.state);
  const filterOf = (kind: string) => subjects.all(config.experiment, kind as "cand");
  const streamOf = { prompt: STREAMS.prompts, cand: STREAMS.candidates, verdict: STREAMS.verdicts, pair: STREAMS.pairs, eval: STREAMS.evaluations, ctl: STREAMS.control };
  const panel: Panel = {
    url: server.url,
    server,
    nc,
    dir,
    config,
    processes,
    startCoordinator() {
      const p = new PopProcess("coordinator", ["coordinator", ...common], join(dir, `coordinator-${processes.size}.log`));
      processes.set(`coordinator-${processes.size}`, p);
      return p;
    },
    startActor(peer, checkpoint, instance) {
      const args = ["actor", "--peer", peer, "--checkpoint", checkpoint, "--bench-items", "20", ...common, ...actorArgs];
      if (instance) args.push("--instance", instance);
      const p = new PopProcess(peer, args, join(dir, `${peer}-${processes.size}.log`));
      processes.set(`${peer}-${processes.size}`, p);
      return p;
    },
    startServedActor(peer, baseUrl, model, extra = []) {
      const args = ["actor", "--peer", peer, "--backend", "openai", "--base-url", baseUrl, "--model", model, ...common, ...actorArgs, ...extra];
      return panel.spawn(peer, args);
    },
    spawn(name, args) {
      const p = new PopProcess(name, args, join(dir, `${name}-${processes.size}.log`));
      processes.set(`${name}-${processes.size}`, p);
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
    async dispose() {
      await Promise.all([...processes.values()].map((p) => p.stop(5000)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return panel;
}

/** Sends SIGSTOP/SIGCONT: freezes a process without it noticing (its heartbeats stop too). */
export function freeze(p: PopProcess, frozen: boolean): void {
  p.child.kill(frozen ? "SIGSTOP" : "SIGCONT");
}
