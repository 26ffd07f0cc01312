/** Builds a model backend from a plain, serialisable description (so a worker thread can too). */
import { PopError } from "../../protocol/mod.ts";
import type { ModelBackend } from "./types.ts";

/** Which backend to run and where its weights come from. */
export type BackendSpec = {
  kind: "tiny";
  /** A checkpoint file path, or the bytes of one. */
  weights: string | Uint8Array;
  /** Benchmark items per suite for evaluate(). */
  benchItems?: number;
};

/** The backend kinds this build can run. */
export const BACKEND_KINDS = ["tiny"] as const;

/** A backend could not be created or a call into it failed. */
export class BackendError extends PopError {}

export async function createBackend(spec: BackendSpec): Promise<ModelBackend> {
  switch (spec.kind) {
    case "tiny": {
      const { TinyBackend } = await import("../tiny/backend.ts");
      try {
        return await TinyBackend.load(spec.weights, { benchItems: spec.benchItems });
      } catch (error) {
        const where = typeof spec.weights === "string" ? spec.weights : `${spec.weights.length} bytes`;
        throw new BackendError(`cannot load tiny checkpoint (${where}): ${(error as Error).message}`, { cause: error });
      }
    }
    default:
      throw new BackendError(`unknown backend kind '${(spec as { kind: string }).kind}'; available: ${BACKEND_KINDS.join(", ")}`);
  }
}
