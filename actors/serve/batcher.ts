/**
 * Micro-batching: what lets one small model serve many concurrent requests, as vLLM batches
 * them. Requests wait in a queue for a short window (or until the queue holds `maxBatch`), then
 * go to the model in as few calls as possible: every queued judge item in one
 * `judgeDistributions` call, and the queued questions in one `generate` call per distinct
 * (n, temperature, max tokens). Only one batch is at the model at a time; what arrives meanwhile
 * waits and goes in the next, so batches grow with the load instead of the queue at the model.
 * Work whose client has gone (its signal aborted) leaves the queue; once at the model it runs out.
 */
import type { Answerer, GeneratedAnswer, JudgeInput, ModelBackend, PromptInput, ScoreDistributions } from "../models/contract.ts";

/** Sampling settings a question's batch must share (the seed travels in the prompt id). */
export interface AnswerSampling {
  k: number;
  temperature: number;
  maxTokens?: number;
  topP?: number;
}

/** A question's answers: with their tokens when the backend reports them (`generateDetailed`), else text only. */
export type Answers = { detailed: GeneratedAnswer[] } | { plain: string[] };

/** Alternatives asked of the backend per token: the most any request may ask for, cut per request later. */
const TOP_ASKED = 20;

/** What a job rejects with when its client went away while it was queued. */
export class CancelledError extends Error {
  constructor() {
    super("the client went away before the work started");
    this.name = "CancelledError";
  }
}

/** Counters since the batcher started. */
export interface BatchStats {
  /** Items sent to the model (counted when their batch leaves the queue). */
  items: number;
  /** Flushes of the queue. */
  batches: number;
  /** Calls made to the backend (a flush makes one per kind and sampling group, more when it retries items one by one). */
  backendCalls: number;
}

interface Job<I, R> {
  input: I;
  resolve: (result: R) => void;
  reject: (error: Error) => void;
}
type JudgeJob = Job<JudgeInput, number[][]> & { kind: "judge" };
type AnswerJob = Job<PromptInput, Answers> & { kind: "answer"; sampling: AnswerSampling };

/** Queues model work and runs it in batches; see the module comment. */
export class MicroBatcher {
  private queue: (JudgeJob | AnswerJob)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private readonly counters: BatchStats = { items: 0, batches: 0, backendCalls: 0 };

  constructor(
    private readonly backend: Answerer & ScoreDistributions & Pick<ModelBackend, "generateDetailed">,
    private readonly options: { windowMs: number; maxBatch: number },
  ) {}

  /** The model's log-probs of the scores 1..5 per criterion (protocol order) for one item. */
  distributions(item: JudgeInput, signal?: AbortSignal): Promise<number[][]> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "judge", input: item, resolve, reject }, signal));
  }

  /**
   * `sampling.k` answers to one prompt. The backend is called with seed 0, so the prompt's id
   * must carry the request's seed: that keeps a request's answers the same in any batch.
   */
  answers(prompt: PromptInput, sampling: AnswerSampling, signal?: AbortSignal): Promise<Answers> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "answer", input: prompt, sampling, resolve, reject }, signal));
  }

  stats(): BatchStats {
    return { ...this.counters };
  }

  /** Resolves once nothing is queued or at the model (for a clean shutdown). */
  async drain(): Promise<void> {
    while (this.queue.length || this.inFlight) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flush();
      await this.inFlight;
    }
  }

  private enqueue(job: JudgeJob | AnswerJob, signal?: AbortSignal): void {
    if (signal?.aborted) return job.reject(new CancelledError());
    this.queue.push(job);
    signal?.addEventListener(
      "abort",
      () => {
        const at = this.queue.indexOf(job);
        // Already at the model: it runs out, and nobody reads the answer.
        if (at < 0) return;
        this.queue.splice(at, 1);
        job.reject(new CancelledError());
      },
      { once: true },
    );
    // While a batch is at the model, the queue fills and is flushed when it returns.
    if (this.inFlight) return;
    if (this.queue.length >= this.options.maxBatch) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.flush();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.options.windowMs);
    }
  }

  private flush(): void {
    if (this.inFlight || !this.queue.length) return;
    const jobs = this.queue.splice(0, this.options.maxBatch);
    this.counters.batches++;
    this.counters.items += jobs.length;
    this.inFlight = this.run(jobs).finally(() => {
      this.inFlight = undefined;
      // What queued meanwhile has already waited at least a window: send it at once.
      this.flush();
    });
  }

  private async run(jobs: (JudgeJob | AnswerJob)[]): Promise<void> {
    const judges = jobs.filter((j): j is JudgeJob => j.kind === "judge");
    const groups = new Map<string, AnswerJob[]>();
    for (const j of jobs) {
      if (j.kind !== "answer") continue;
      const key = JSON.stringify([j.sampling.k, j.sampling.temperature, j.sampling.maxTokens ?? null, j.sampling.topP ?? 1]);
      groups.set(key, [...(groups.get(key) ?? []), j]);
    }
    const calls: Promise<void>[] = [];
    if (judges.length) calls.push(this.settle(judges, (items) => this.backend.judgeDistributions(items)));
    for (const group of groups.values()) {
      const { k, temperature, maxTokens, topP } = group[0]!.sampling;
      const options = { k, temperature, maxTokens, topP, seed: 0 };
      const detailed = this.backend.generateDetailed?.bind(this.backend);
      calls.push(
        this.settle(group, async (prompts): Promise<Answers[]> => {
          if (detailed) return (await detailed(prompts, { ...options, topLogprobs: TOP_ASKED })).map((d) => ({ detailed: d }));
          return (await this.backend.generate(prompts, options)).map((plain) => ({ plain }));
        }),
      );
    }
    await Promise.all(calls);
  }

  /** Runs one backend call for `jobs` and hands each its result; never rejects. */
  private async settle<I, R>(jobs: Job<I, R>[], call: (inputs: I[]) => Promise<R[]>): Promise<void> {
    try {
      this.counters.backendCalls++;
      const results = await call(jobs.map((j) => j.input));
      if (results.length !== jobs.length) throw new Error(`the backend returned ${results.length} results for ${jobs.length} inputs`);
      jobs.forEach((j, i) => j.resolve(results[i]!));
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      if (jobs.length === 1) return jobs[0]!.reject(e);
      // One bad input (an image whose header reads but whose pixels do not) fails the whole call:
      // retry one by one so only its own request fails. Determinism makes the retry's answers the same.
      for (const j of jobs) await this.settle([j], call);
    }
  }
}
