/** The `tiny` backend kind: the embedded model, run in a worker thread so it never blocks the actor. */
import { existsSync } from "node:fs";
import { BackendConfigError, BackendError, type BackendPlug } from "../registry.ts";
import type { ModelBackend } from "../contract.ts";
import { WorkerBackend } from "../worker/backend.ts";
import { shippedCheckpoint, shippedMembers } from "./checkpoints.ts";

/** What the worker needs to load a tiny model. */
export interface TinySpec {
  /** A checkpoint file path, or the bytes of one. */
  weights: string | Uint8Array;
  /** Benchmark items per suite for evaluate(). */
  benchItems?: number;
}

export const tinyPlug: BackendPlug<TinySpec> = {
  kind: "tiny",
  summary: "the embedded tiny VLM (CPU, no downloads): answers, judges, trains, evaluates",
  options: [
    { flag: "checkpoint", value: "FILE", help: "weights file; default: the shipped checkpoint named like --peer" },
    { flag: "bench-items", value: "N", help: "items per benchmark suite when evaluating", default: "100" },
  ],
  configure(read, { peer }) {
    const weights = read.string("checkpoint") ?? shippedCheckpoint(peer);
    if (!weights)
      throw new BackendConfigError(`no --checkpoint given and '${peer}' is not a shipped member (${shippedMembers().join(", ")}); pass --checkpoint FILE`);
    if (!existsSync(weights)) throw new BackendConfigError(`checkpoint ${weights} does not exist`);
    return { weights, benchItems: read.int("bench-items", { min: 1 }) };
  },
  open(spec) {
    return WorkerBackend.start(new URL("./worker-entry.ts", import.meta.url), spec);
  },
};

/** Opens a tiny backend from a spec in this thread (the worker calls this). */
export async function openTiny(spec: TinySpec): Promise<ModelBackend> {
  const { TinyBackend } = await import("./backend.ts");
  try {
    return await TinyBackend.load(spec.weights, { benchItems: spec.benchItems });
  } catch (error) {
    const where = typeof spec.weights === "string" ? spec.weights : `${spec.weights.length} bytes`;
    throw new BackendError(`cannot load tiny checkpoint (${where}): ${(error as Error).message}`, { cause: error });
  }
}
