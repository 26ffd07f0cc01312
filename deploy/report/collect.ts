/** Reads a run back from JetStream: evaluations, pairs and iteration events. */
import type { NatsConnection } from "@nats-io/transport-node";
import { STREAMS, readStored, subjects, type ControlEvent, type EvaluationResult, type PreferencePair } from "../../protocol/mod.ts";

export interface StoredRun {
  experiment: string;
  evaluations: EvaluationResult[];
  pairs: PreferencePair[];
  control: ControlEvent[];
}

export async function collectRun(nc: NatsConnection, experiment: string): Promise<StoredRun> {
  const [evals, pairs, control] = await Promise.all([
    readStored(nc, STREAMS.evaluations.name, subjects.all(experiment, "eval"), "evaluation"),
    readStored(nc, STREAMS.pairs.name, subjects.all(experiment, "pair"), "pair"),
    readStored(nc, STREAMS.control.name, subjects.all(experiment, "ctl"), "control"),
  ]);
  return { experiment, evaluations: evals.messages, pairs: pairs.messages, control: control.messages };
}
