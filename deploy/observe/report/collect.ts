/** Reads a run back from JetStream: its settings, evaluations, pairs and control events. */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BUCKETS,
  FenceView,
  kvmOf,
  readRecord,
  readStored,
  stateKeys,
  STREAMS,
  subjects,
  type ControlEvent,
  type EvaluationResult,
  type ExperimentConfig,
  type PreferencePair,
} from "../../../protocol/mod.ts";

export interface StoredRun {
  experiment: string;
  /** The experiment's settings, where stored (absent when the state bucket has none). */
  config?: ExperimentConfig;
  evaluations: EvaluationResult[];
  pairs: PreferencePair[];
  control: ControlEvent[];
}

export async function collectRun(nc: NatsConnection, experiment: string): Promise<StoredRun> {
  // A stale coordinator leader's pairs and control events are not counted (protocol/fence.ts);
  // a run stored before leases has no lease and is read as it is.
  const fence = await fenceOf(nc, experiment);
  const [evals, pairs, control, config] = await Promise.all([
    readStored(nc, STREAMS.evaluations.name, subjects.all(experiment, "eval"), "evaluation"),
    readStored(nc, STREAMS.pairs.name, subjects.all(experiment, "pair"), "pair", { fence }),
    readStored(nc, STREAMS.control.name, subjects.all(experiment, "ctl"), "control", { fence }),
    storedConfig(nc, experiment),
  ]);
  return { experiment, ...(config ? { config } : {}), evaluations: evals.messages, pairs: pairs.messages, control: control.messages };
}

async function fenceOf(nc: NatsConnection, experiment: string): Promise<FenceView | undefined> {
  try {
    return await FenceView.read(await kvmOf(nc).open(BUCKETS.state), experiment);
  } catch {
    return undefined; // no state bucket: nothing to fence by
  }
}

async function storedConfig(nc: NatsConnection, experiment: string): Promise<ExperimentConfig | undefined> {
  try {
    const kv = await kvmOf(nc).open(BUCKETS.state);
    return await readRecord(kv, stateKeys.config(experiment), "experiment");
  } catch {
    return undefined; // the report is still worth writing without its settings
  }
}
