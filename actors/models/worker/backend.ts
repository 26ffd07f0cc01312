/**
 * A backend running in a worker thread. Model work (tens to thousands of milliseconds per call)
 * would otherwise block the actor's event loop and starve its heartbeats and NATS pings. The
 * worker imports a module that exports `openBackend(spec)`; the proxy has exactly the optional
 * methods the backend inside has.
 */
import { Worker } from "node:worker_threads";
import { settlesWithin } from "../../../protocol/timeout.ts";
import { BackendError } from "../registry.ts";
import {
  OPTIONAL_METHODS,
  type BackendInfo,
  type Judgement,
  type JudgeInput,
  type JudgeOptions,
  type ModelBackend,
  type OptionalMethod,
  type PromptInput,
  type SamplingOptions,
  type TrainStep,
} from "../contract.ts";
import { reportUsage, type Usage } from "../usage.ts";

/** How long an idle backend may take to dispose itself before its thread is terminated. */
const DISPOSE_GRACE_MS = 2_000;

/** A call's outcome, with what the backend in the worker reported of its cost. */
type Reply = { result?: unknown; error?: Error; usage?: Usage };
type Pending = { settle: (reply: Reply) => void; progress?: (done: number, total: number, step?: TrainStep) => void };

export class WorkerBackend implements ModelBackend {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead?: Error;

  private constructor(
    private readonly worker: Worker,
    methods: OptionalMethod[],
  ) {
    worker.on(
      "message",
      (msg: {
        id?: number;
        ok?: boolean;
        result?: unknown;
        usage?: Usage;
        progress?: [number, number, TrainStep?];
        error?: { message: string; retryable?: boolean };
      }) => {
        if (msg.id === undefined) return;
        const p = this.pending.get(msg.id);
        if (!p) return;
        if (msg.progress) return p.progress?.(msg.progress[0], msg.progress[1], msg.progress[2]);
        this.pending.delete(msg.id);
        if (msg.ok) p.settle({ result: msg.result, usage: msg.usage });
        else p.settle({ error: new BackendError(msg.error!.message, { retryable: msg.error!.retryable }), usage: msg.usage });
      },
    );
    const fail = (error: Error) => {
      this.dead = error;
      for (const p of this.pending.values()) p.settle({ error });
      this.pending.clear();
    };
    worker.on("error", (e) => fail(new BackendError(`model worker crashed: ${e.message}`, { cause: e })));
    worker.on("exit", (code) => fail(new BackendError(`model worker exited (code ${code})`)));
    const self = this as unknown as Record<string, unknown>;
    for (const m of OPTIONAL_METHODS) {
      if (methods.includes(m)) self[m] = (...args: unknown[]) => this.call(m, ...args);
    }
  }

  /**
   * Starts a worker that imports `module` and calls its `openBackend(spec)`; resolves once the
   * backend inside has loaded.
   */
  static async start(module: URL, spec: unknown): Promise<WorkerBackend> {
    const worker = new Worker(new URL("./boot.mjs", import.meta.url), { workerData: { module: module.href, spec } });
    const methods = await new Promise<OptionalMethod[]>((resolve, reject) => {
      const onMessage = (msg: { ready?: boolean; methods?: OptionalMethod[]; error?: { message: string; retryable?: boolean } }) => {
        if (msg.ready === undefined) return;
        worker.off("message", onMessage);
        if (msg.ready) resolve(msg.methods ?? []);
        else reject(new BackendError(msg.error?.message ?? "backend failed to load", { retryable: msg.error?.retryable }));
      };
      worker.on("message", onMessage);
      worker.once("error", (e) => reject(new BackendError(`model worker failed to start: ${e.message}`, { cause: e })));
    }).catch(async (error) => {
      await worker.terminate();
      throw error;
    });
    return new WorkerBackend(worker, methods);
  }

  private async call<T>(method: keyof ModelBackend, ...args: unknown[]): Promise<T> {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    // A training context's progress callback cannot cross the thread: the worker reports steps
    // as messages of this call instead (worker-main.ts), handed to the callback here.
    let progress: Pending["progress"];
    if (method === "train" && args[2] && typeof args[2] === "object") {
      const { onProgress, ...context } = args[2] as { onProgress?: Pending["progress"] };
      progress = onProgress;
      args = [args[0], args[1], { ...context, reportProgress: Boolean(onProgress) }];
    }
    const t0 = performance.now();
    const reply = await new Promise<Reply>((settle) => {
      this.pending.set(id, { settle, progress });
      this.worker.postMessage({ id, method, args });
    });
    // Reported here, in the caller's metered call. The worker counts its compute time; the
    // call's wall time, waiting behind other calls in the worker included, is this thread's.
    if (reply.usage && reply.usage.requests > 0) reportUsage({ ...reply.usage, seconds: (performance.now() - t0) / 1000 });
    if (reply.error) throw reply.error;
    return reply.result as T;
  }

  info(): Promise<BackendInfo> {
    return this.call("info");
  }
  generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]> {
    return this.call("generate", prompts, options);
  }
  judge(items: JudgeInput[], options?: JudgeOptions): Promise<Judgement[]> {
    return this.call("judge", items, options);
  }
  /**
   * Ends the worker. A call in progress (a train() can run for minutes) is not waited for: a
   * polite dispose would wait behind its synchronous stretches or free the model under it; the
   * thread is terminated instead and the call rejects. An idle backend disposes itself first,
   * within {@link DISPOSE_GRACE_MS}.
   */
  async dispose(): Promise<void> {
    if (!this.dead && this.pending.size === 0) await settlesWithin(this.call("dispose"), DISPOSE_GRACE_MS).catch(() => undefined);
    await this.worker.terminate();
  }
}
