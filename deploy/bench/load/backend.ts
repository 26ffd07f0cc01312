/**
 * The load generator: a model backend for benchmarks only. It answers and scores without a model,
 * either at once or after a fixed time per item with a limited number of items in flight at a
 * time (a GPU's batch slots), so the message plane and the panel's scheduling can be measured
 * apart from any model. Never registered as a backend kind users can choose.
 */
import type { BackendInfo, Judgement, JudgeInput, ModelBackend, PromptInput, SamplingOptions } from "../../../actors/models/contract.ts";

export interface LoadOptions {
  /** Time per prompt answered (all k samples of a prompt share one slot, as in a batched sampler). */
  answerMs: number;
  /** Time per candidate judged. */
  judgeMs: number;
  /** Items in flight at once, across concurrent calls. */
  slots: number;
}

/** A semaphore with `n` permits. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LoadGeneratorBackend implements ModelBackend {
  private readonly slots: Slots;
  /** Item-milliseconds of work done (answering and judging), for the utilization bound. */
  workMs = 0;

  /** `name` goes into every answer, so no two authors' answers are alike (a judge scores each once). */
  constructor(
    private readonly o: LoadOptions,
    private readonly name = "load",
  ) {
    this.slots = new Slots(Math.max(1, o.slots));
  }

  async info(): Promise<BackendInfo> {
    return { kind: "load-generator", version: "load0000" };
  }

  async dispose(): Promise<void> {}

  /** k answers per prompt: `<name> a0` .. `<name> a<k-1> last` (the judges below prefer `a0` and reject the last). */
  async generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]> {
    const answer = async () => Array.from({ length: options.k }, (_, i) => `${this.name} a${i}${i === options.k - 1 ? " last" : ""}`);
    if (this.o.answerMs <= 0) return Promise.all(prompts.map(answer));
    return Promise.all(prompts.map(() => this.timed(this.o.answerMs, answer)));
  }

  /**
   * 5 on every criterion for a first answer, 1 for a last one, 3 otherwise: every prompt yields a
   * pair. With one answer each (k = 1, first and last at once), 5 or 1 by the parity of the
   * author's name's last character (p0, p1, …), so that members differ and a prompt still yields one.
   */
  async judge(items: JudgeInput[]): Promise<Judgement[]> {
    const score = async (item: JudgeInput): Promise<Judgement> => {
      const only = / a0 last$/.exec(item.answer);
      const x = only ? (item.answer.charCodeAt(only.index - 1) % 2 === 0 ? 5 : 1) : item.answer.endsWith(" a0") ? 5 : item.answer.endsWith(" last") ? 1 : 3;
      return { likert: { helpfulness: x, correctness: x, coherence: x, complexity: x, verbosity: x } };
    };
    if (this.o.judgeMs <= 0) return Promise.all(items.map(score));
    return Promise.all(items.map((item) => this.timed(this.o.judgeMs, () => score(item))));
  }

  private timed<T>(ms: number, work: () => Promise<T>): Promise<T> {
    return this.slots.run(async () => {
      await sleep(ms);
      this.workMs += ms;
      return work();
    });
  }
}
