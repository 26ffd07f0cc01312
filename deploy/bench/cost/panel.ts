/**
 * One configuration of the cost bench: an experiment of one iteration whose coordinator and
 * members run in this process (real PeerActor instances with the openai backend, as `pop actor
 * --backend openai` builds them), against the bench's `pop serve`. What each member's model calls
 * cost comes from its own count (actors/cost.ts), carried in its training_done event.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { PeerActor } from "../../../actors/actor.ts";
import { OpenAiBackend } from "../../../actors/models/openai/backend.ts";
import { JUDGE_TEMPERATURE } from "../../../actors/models/tiny/backend.ts";
import { Coordinator } from "../../../coordinator/coordinator.ts";
import { STREAMS, readStored, subjects, type ExperimentConfig, type MessageOf, type PhaseCost } from "../../../protocol/mod.ts";
import { connectNats, closeNats } from "../../cli/connect.ts";
import { createLogger } from "../../cli/log.ts";
import { createExperiment } from "../../ops/experiment.ts";

/** What one configuration's run left behind. */
export interface PanelRun {
  config: ExperimentConfig;
  peers: string[];
  /** Each member's cost of iteration 1, by phase, as its training_done carries it. */
  costs: Map<string, PhaseCost>;
  prompts: MessageOf<"prompt">[];
  candidates: MessageOf<"candidates">[];
  verdicts: MessageOf<"verdict">[];
  pairs: MessageOf<"pair">[];
  seconds: number;
}

export interface PanelSpec {
  /** The bench's own connection (topology, experiment, reading back). */
  nc: NatsConnection;
  natsUrl: string;
  /** The API root of the server of a model. */
  urlOf: (model: string) => string;
  config: ExperimentConfig;
  members: { peer: string; model: string }[];
  timeoutMs: number;
}

/** Runs the experiment's single iteration to its end and reads back what it stored. */
export async function runPanel(spec: PanelSpec): Promise<PanelRun> {
  const { nc, config } = spec;
  const experiment = config.experiment;
  const t0 = Date.now();
  await createExperiment(nc, config);
  const log = (name: string) => createLogger(name, { level: process.env.POP_LOG_LEVEL ?? "error", context: { experiment } });
  const abort = new AbortController();
  const coordinatorNc = await connectNats(spec.natsUrl, `cost-coordinator-${experiment}`);
  const coordinator = new Coordinator({ nc: coordinatorNc, experiment, log: log("coordinator") });
  const coordinating = coordinator.run(abort.signal).catch((error: unknown) => error as Error);
  const actors: { actor: PeerActor; backend: OpenAiBackend; nc: NatsConnection }[] = [];
  try {
    for (const m of spec.members) {
      const memberNc = await connectNats(spec.natsUrl, `cost-${m.peer}`);
      // The embedded model's judge temperature, so served scores match what it gives in process.
      const backend = await OpenAiBackend.open(
        { baseUrl: spec.urlOf(m.model), model: m.model, judgeTemperature: JUDGE_TEMPERATURE, startupWaitMs: 60_000 },
        log(m.peer),
      );
      const actor = new PeerActor({ nc: memberNc, experiment, peer: m.peer, instance: `${m.peer}-1`, backend, backendKind: "openai", log: log(m.peer) });
      actors.push({ actor, backend, nc: memberNc });
      await actor.start();
    }
    const deadline = Date.now() + spec.timeoutMs;
    for (;;) {
      const ctl = (await readStored(nc, STREAMS.control.name, subjects.all(experiment, "ctl"), "control")).messages;
      if (ctl.some((e) => e.event === "experiment_done")) break;
      const failed = await Promise.race([coordinating, Promise.resolve(undefined)]);
      if (failed) throw new Error(`the coordinator of ${experiment} failed: ${failed.message}`, { cause: failed });
      if (Date.now() > deadline) throw new Error(`${experiment} did not finish in ${spec.timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    for (const a of actors) {
      await a.actor.stop().catch(() => undefined);
      await a.backend.dispose().catch(() => undefined);
      await closeNats(a.nc).catch(() => undefined);
    }
    abort.abort();
    await coordinating;
    await closeNats(coordinatorNc).catch(() => undefined);
  }
  const read = <T extends "prompt" | "candidates" | "verdict" | "pair" | "control">(stream: string, kind: string, type: T) =>
    readStored(nc, stream, subjects.all(experiment, kind as "cand"), type).then((r) => r.messages as MessageOf<T>[]);
  const [control, prompts, candidates, verdicts, pairs] = await Promise.all([
    read(STREAMS.control.name, "ctl", "control"),
    read(STREAMS.prompts.name, "prompt", "prompt"),
    read(STREAMS.candidates.name, "cand", "candidates"),
    read(STREAMS.verdicts.name, "verdict", "verdict"),
    read(STREAMS.pairs.name, "pair", "pair"),
  ]);
  const costs = new Map<string, PhaseCost>();
  for (const e of control) if (e.event === "training_done" && e.iteration === 1 && e.cost) costs.set(e.peer, e.cost);
  return { config, peers: spec.members.map((m) => m.peer), costs, prompts, candidates, verdicts, pairs, seconds: (Date.now() - t0) / 1000 };
}
