/**
 * Runs inside the worker thread: imports the module named in workerData, opens the backend with
 * its `openBackend(spec)`, and answers calls from the actor.
 */
import { parentPort, workerData } from "node:worker_threads";
import { capabilitiesOf, type ModelBackend, type TrainStep } from "../contract.ts";
import { meterUsage, NO_USAGE, type Usage } from "../usage.ts";

interface Call {
  id: number;
  method: keyof ModelBackend;
  args: unknown[];
}

const port = parentPort!;
const { module, spec } = workerData as { module: string; spec: unknown };
let backend: ModelBackend | undefined;
const ready = import(module)
  .then((mod: { openBackend(spec: unknown): Promise<ModelBackend> }) => mod.openBackend(spec))
  .then(
    (b) => {
      backend = b;
      port.postMessage({ ready: true, methods: capabilitiesOf(b) });
    },
    (error: Error & { retryable?: boolean }) =>
      port.postMessage({ ready: false, error: { message: error.message, name: error.name, retryable: error.retryable ?? false } }),
  );

port.on("message", async (call: Call) => {
  await ready;
  // What the backend reports in this thread goes back with the reply; the caller's thread
  // reports it in the caller's metered call (worker/backend.ts).
  const usage: Usage = { ...NO_USAGE };
  try {
    if (!backend) throw new Error("backend failed to load");
    const fn = backend[call.method] as ((...a: unknown[]) => Promise<unknown>) | undefined;
    if (typeof fn !== "function") throw new Error(`this backend has no '${String(call.method)}'`);
    const context = call.method === "train" ? (call.args[2] as { reportProgress?: boolean } | undefined) : undefined;
    if (context?.reportProgress) {
      call.args[2] = {
        ...context,
        onProgress: (done: number, total: number, step?: TrainStep) => port.postMessage({ id: call.id, progress: [done, total, step] }),
      };
    }
    const { result } = await meterUsage(() => fn.apply(backend, call.args), usage);
    port.postMessage({ id: call.id, ok: true, result, usage });
  } catch (error) {
    const e = error as Error & { retryable?: boolean };
    port.postMessage({ id: call.id, ok: false, error: { message: e.message, name: e.name, retryable: e.retryable ?? false }, usage });
  }
});
