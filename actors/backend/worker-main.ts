/** Runs inside the worker thread: owns the real backend and answers calls from the actor. */
import { parentPort, workerData } from "node:worker_threads";
import { createBackend, type BackendSpec } from "./factory.ts";
import type { ModelBackend } from "./types.ts";

interface Call {
  id: number;
  method: keyof ModelBackend;
  args: unknown[];
}

const port = parentPort!;
let backend: ModelBackend | undefined;
const ready = createBackend(workerData as BackendSpec).then(
  (b) => {
    backend = b;
    port.postMessage({ ready: true });
  },
  (error: Error) => port.postMessage({ ready: false, error: { message: error.message, name: error.name } }),
);

port.on("message", async (call: Call) => {
  await ready;
  try {
    if (!backend) throw new Error("backend failed to load");
    const fn = backend[call.method] as (...a: unknown[]) => Promise<unknown>;
    const result = await fn.apply(backend, call.args);
    port.postMessage({ id: call.id, ok: true, result });
  } catch (error) {
    const e = error as Error & { retryable?: boolean };
    port.postMessage({ id: call.id, ok: false, error: { message: e.message, name: e.name, retryable: e.retryable ?? false } });
  }
});
