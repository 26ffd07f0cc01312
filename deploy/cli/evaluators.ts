/** How a peer is benchmarked, from `pop actor`'s options: a benchmark file, a user's command, or the backend's own suites. */
import type { Logger } from "pino";
import type { EvalContext, Evaluator, ModelBackend } from "../../actors/models/contract.ts";
import { BenchmarkFileEvaluator } from "../../actors/evaluation/benchmark-file.ts";
import { CommandEvaluator } from "../../actors/evaluation/command.ts";
import { progressLine } from "./progress.ts";

export interface EvaluatorChoice {
  backend: ModelBackend;
  /** A benchmark JSONL (see actors/evaluation/benchmark-file.ts). */
  bench?: string;
  /** A shell command that writes per-suite scores to $POP_SCORES. */
  evalCmd?: string;
  evalTimeoutMs: number;
  peer: string;
  kind: string;
  /** The backend's spec; a served model's base URL and name are handed to the command. */
  spec: unknown;
  log: Logger;
}

/** The evaluator the options ask for; undefined leaves it to the backend's own (if any). */
export async function peerEvaluator(c: EvaluatorChoice): Promise<Evaluator | undefined> {
  if (c.bench) {
    let last = 0;
    let started = 0;
    return BenchmarkFileEvaluator.open(c.backend, c.bench, {
      onProgress: (done, total) => {
        const now = Date.now();
        // Each evaluation (one per iteration) reports 0 done first: the clock starts there.
        if (done === 0) started = now;
        if (done === total || now - last > 10_000) {
          last = now;
          c.log.info({ done, total, line: progressLine("benchmark", done, total, now - started, { unit: "items" }) }, "benchmark progress");
        }
      },
    });
  }
  if (c.evalCmd) {
    const command = c.evalCmd;
    const served = c.spec as { baseUrl?: string; model?: string };
    return {
      // The command learns what to evaluate from its environment, fresh for each iteration.
      evaluate: (context?: EvalContext) =>
        new CommandEvaluator(command, {
          timeoutMs: c.evalTimeoutMs,
          log: { info: (fields, msg) => c.log.info(fields, msg) },
          env: {
            POP_PEER: c.peer,
            POP_BACKEND: c.kind,
            ...(served.baseUrl ? { POP_BASE_URL: served.baseUrl } : {}),
            ...(served.model ? { POP_MODEL: served.model } : {}),
            ...(context ? { POP_ITERATION: String(context.iteration), POP_MODEL_VERSION: context.modelVersion } : {}),
          },
        }).evaluate(),
    };
  }
  return undefined;
}
