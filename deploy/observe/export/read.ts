/** Reads a run's verdicts back from JetStream: what the export's per-judge scores are made of. */
import type { NatsConnection } from "@nats-io/transport-node";
import { readStored, STREAMS, subjects, type Verdict } from "../../../protocol/mod.ts";

export async function readVerdicts(nc: NatsConnection, experiment: string): Promise<Verdict[]> {
  return (await readStored(nc, STREAMS.verdicts.name, subjects.all(experiment, "verdict"), "verdict")).messages;
}
