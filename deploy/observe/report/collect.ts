/**
 * Reads a run back from JetStream: its settings, evaluations, pairs and control events, and when
 * each candidate batch and verdict was made (for the time breakdown; the messages themselves are
 * not kept).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BUCKETS,
  FenceView,
  kvmOf,
  readRecord,
  readStored,
  visitStored,
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
  /** When each candidate batch and verdict was made, by iteration (absent where not read). */
  activity?: { candidates: StampedAt[]; verdicts: StampedAt[] };
  /** The version the NATS server announced, where known. */
  serverVersion?: string;
}

/** A message's iteration and creation time (epoch ms). */
export interface StampedAt {
  iteration: number;
  at: number;
}

export async function collectRun(nc: NatsConnection, experiment: string): Promise<StoredRun> {
  // A stale coordinator leader's pairs and control events are not counted (protocol/fence.ts);
  // a run stored before leases has no lease and is read as it is.
  const fence = await fenceOf(nc, experiment);
  const [evals, pairs, control, config, candidates, verdicts] = await Promise.all([
    readStored(nc, STREAMS.evaluations.name, subjects.all(experiment, "eval"), "evaluation"),
    readStored(nc, STREAMS.pairs.name, subjects.all(experiment, "pair"), "pair", { fence }),
    readStored(nc, STREAMS.control.name, subjects.all(experiment, "ctl"), "control", { fence }),
    storedConfig(nc, experiment),
    stamps(nc, STREAMS.candidates.name, subjects.all(experiment, "cand"), "candidates"),
    stamps(nc, STREAMS.verdicts.name, subjects.all(experiment, "verdict"), "verdict"),
  ]);
  const serverVersion = nc.info?.version;
  return {
    experiment,
    ...(config ? { config } : {}),
    evaluations: evals.messages,
    pairs: pairs.messages,
    control: control.messages,
    activity: { candidates, verdicts },
    ...(serverVersion ? { serverVersion } : {}),
  };
}

/** Each stored message's iteration and time, visited one at a time (an iteration can hold many). */
async function stamps(nc: NatsConnection, stream: string, filter: string, type: "candidates" | "verdict"): Promise<StampedAt[]> {
  let out: StampedAt[] = [];
  await visitStored(nc, stream, filter, type, (m) => void out.push({ iteration: m.iteration, at: m.createdAt }), { begin: () => (out = []) });
  return out;
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
