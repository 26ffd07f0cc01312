/**
 * A backend running in a worker thread. Model work (tens to thousands of milliseconds per call)
 * would otherwise block the actor's event loop and starve its heartbeats and NATS pings.
 */
import { Worker } from "node:worker_threads";
import { BackendError, type BackendSpec } from "./factory.ts";
import type { BackendInfo, EvalResult, JudgeInput, LikertScores, ModelBackend, PreferenceInput, PromptInput, SamplingOptions, SimpoOptions, TrainResult } from "./types.ts";

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class WorkerBackend implements ModelBackend {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead?: Error;

  private constructor(private readonly worker: Worker) {
    worker.on("message", (msg: { id?: number; ok?: boolean; result?: unknown; error?: { message: string; retryable?: boolean } }) => {
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new BackendError(msg.error!.message, { retryable: msg.error!.retryable }));
    });
    const fail = (error: Error) => {
      this.dead = error;
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
    };
    worker.on("error", (e) => fail(new BackendError(`model worker crashed: ${e.message}`, { cause: e })));
    worker.on("exit", (code) => fail(new BackendError(`model worker exited (code ${code})`)));
  }

  /** Starts a worker and waits until the backend inside it has loaded. */
  static async start(spec: BackendSpec): Promise<WorkerBackend> {
    const worker = new Worker(new URL("./worker-boot.mjs", import.meta.url), { workerData: spec });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: { ready?: boolean; error?: { message: string } }) => {
        if (msg.ready === undefined) return;
        worker.off("message", onMessage);
        if (msg.ready) resolve();
        else reject(new BackendError(msg.error?.message ?? "backend failed to load"));
      };
      worker.on("message", onMessage);
      worker.once("error", (e) => reject(new BackendError(`model worker failed to start: ${e.message}`, { cause: e })));
    }).catch(async (error) => {
      await worker.terminate();
      throw error;
    });
    return new WorkerBackend(worker);
  }

  private call<T>(method: keyof ModelBackend, ...args: unknown[]): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args });
    });
  }

  info(): Promise<BackendInfo> {
    return this.call("info");
  }
  generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]> {
    return this.call("generate", prompts, options);
  }
  judge(items: JudgeInput[]): Promise<LikertScores[]> {
    return this.call("judge", items);
  }
  train(pairs: PreferenceInput[], options: SimpoOptions): Promise<TrainResult> {
    return this.call("train", pairs, options);
  }
  evaluate(): Promise<EvalResult> {
    return this.call("evaluate");
  }
  exportWeights(): Promise<Uint8Array> {
    return this.call("exportWeights");
  }
  importWeights(bytes: Uint8Array): Promise<void> {
    return this.call("importWeights", bytes);
  }
  async dispose(): Promise<void> {
    if (!this.dead) await this.call("dispose").catch(() => undefined);
    await this.worker.terminate();
  }
}
