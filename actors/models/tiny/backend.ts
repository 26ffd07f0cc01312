/**
 * TinyBackend: the embedded default model behind the ModelBackend contract.
 *
 * ```ts
 * const be = await TinyBackend.load("actors/models/tiny/checkpoints/ocrdumb.bin");   // or bytes
 * const answers = await be.generate([poolPrompt(7, 0)], { k: 4, temperature: 1, seed: 1 });
 * const scores = await be.judge([{ prompt: poolPrompt(7, 0), answer: answers[0][0] }]);
 * await be.train(pairs, { ...SIMPO_DEFAULTS, seed: 3 });
 * const ev = await be.evaluate();    // six held-out suites
 * ```
 * All work runs synchronously on the calling thread (tfjs wasm); callers that must keep an
 * event loop responsive run the backend in a worker.
 */
import { readFile } from "node:fs/promises";
import { CRITERIA } from "../../../protocol/mod.ts";
import type {
  BackendInfo,
  EvalResult,
  GeneratedAnswer,
  Judgement,
  JudgeInput,
  LikertScores,
  ModelBackend,
  PreferenceInput,
  PromptInput,
  RgbImage,
  SamplingOptions,
  TrainContext,
  TrainResult,
} from "../contract.ts";
import { rgbOfSize } from "../../images/codec.ts";
import { evaluateModel } from "./evaluate.ts";
import { TinyVlm, DEFAULT_CONFIG, type TinyConfig } from "./model.ts";
import { initTf } from "./tf.ts";
import { detokenize, EOS, VOCAB } from "./vocab.ts";
import { SIMPO_DEFAULTS, simpoOptimizer, trainSimpo, type TinySimpoOptions } from "./train.ts";
import type { tf } from "./tf.ts";
import { answerTokenCount, promptTokenCount, reportTinyCall } from "./usage.ts";
import { BENCH_ITEMS, BENCH_SEED, IMG } from "./world.ts";

export interface TinyBackendOptions {
  /** Items per benchmark suite for evaluate() (default 100). */
  benchItems?: number;
  /** Seed of the benchmark suites (default BENCH_SEED). */
  benchSeed?: number;
  /** Engine: "wasm" (default) or "cpu". */
  engine?: "wasm" | "cpu";
  /**
   * Keep the SimPO optimizer (Adam's moment estimates) across train() calls while the optimizer
   * settings stay the same (default false: a fresh optimizer per call).
   */
  keepOptimizer?: boolean;
  /**
   * Temperature at which judge() decodes each criterion's score token (see TinyVlm.judgeScores):
   * 1 = expected score under the model's distribution, 0 = the most likely score. Default
   * {@link JUDGE_TEMPERATURE} (0.25): measured in simulate-pop, it keeps 733 instead of 553 pairs of
   * 1500 prompts with the same share of correct chosen answers, and lets a judge that cannot read a
   * family's images score correct answers of it near its prior instead of dragging them below 0.85.
   */
  judgeTemperature?: number;
}

/** Default judge decoding temperature of TinyBackend. */
export const JUDGE_TEMPERATURE = 0.25;

const BLANK: RgbImage = { width: IMG, height: IMG, data: new Uint8Array(IMG * IMG * 3) };
/** The model sees one 32x32 image: the prompt's first, decoded and resized when it is a PNG or JPEG of another size. */
const imageOf = (p: PromptInput): RgbImage => (p.images[0] ? rgbOfSize(p.images[0], IMG, IMG) : BLANK);

export class TinyBackend implements ModelBackend {
  private model: TinyVlm;
  private readonly opts: TinyBackendOptions;
  private meta: Record<string, unknown>;
  private cachedVersion: string | undefined;
  private optimizer: { key: string; opt: tf.Optimizer } | undefined;

  private constructor(model: TinyVlm, meta: Record<string, unknown>, opts: TinyBackendOptions) {
    this.model = model;
    this.meta = meta;
    this.opts = opts;
  }

  /** Load a checkpoint from a file path or from the bytes of a weights file. */
  static async load(source: string | Uint8Array, options: TinyBackendOptions = {}): Promise<TinyBackend> {
    await initTf(options.engine);
    const bytes = typeof source === "string" ? new Uint8Array(await readFile(source)) : source;
    const { model, meta } = TinyVlm.deserialize(bytes);
    return new TinyBackend(model, meta, options);
  }

  /** Fresh random weights from a seed (for tests and pretraining). */
  static async create(seed: number, config: TinyConfig = DEFAULT_CONFIG, options: TinyBackendOptions = {}): Promise<TinyBackend> {
    await initTf(options.engine);
    return new TinyBackend(TinyVlm.init(seed, config), { seed }, options);
  }

  /** Wrap an existing model (takes ownership). */
  static fromModel(model: TinyVlm, meta: Record<string, unknown> = {}, options: TinyBackendOptions = {}): TinyBackend {
    return new TinyBackend(model, meta, options);
  }

  /** The underlying network (for scripts and tests). */
  get network(): TinyVlm {
    return this.model;
  }

  /** Metadata stored in the checkpoint header (e.g. member name, recipe). */
  get metadata(): Record<string, unknown> {
    return this.meta;
  }

  async info(): Promise<BackendInfo> {
    this.cachedVersion ??= this.model.weightHash();
    return { kind: "tiny", version: this.cachedVersion, parameters: this.model.parameterCount };
  }

  /** Usage: each prompt read once for its k answers; every answer's tokens generated. */
  async generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]> {
    return (await this.sampled(prompts, options)).map((row) => row.map((a) => detokenize(a.ids)));
  }

  /**
   * Answers with each token's log-prob and `topLogprobs` alternatives (the model's distribution,
   * ./sampling.ts). Tokens are words: every one after the first carries its leading space, so
   * they concatenate to the text; <eos> is never part of an answer but may be an alternative.
   */
  async generateDetailed(prompts: PromptInput[], options: SamplingOptions & { topLogprobs: number }): Promise<GeneratedAnswer[][]> {
    const text = (id: number, at: number) => (id === EOS ? VOCAB[id]! : at > 0 ? ` ${VOCAB[id]}` : VOCAB[id]!);
    return (await this.sampled(prompts, options, options.topLogprobs)).map((row) =>
      row.map((a) => ({
        text: detokenize(a.ids),
        finish: a.cut ? "length" : "stop",
        tokens: a.ids.map((id, at) => ({
          token: text(id, at),
          logprob: a.steps![at]!.logprob,
          top: a.steps![at]!.top.map(([v, logprob]) => ({ token: text(v, at), logprob })),
        })),
      })),
    );
  }

  private async sampled(prompts: PromptInput[], options: SamplingOptions, top?: number) {
    const t0 = performance.now();
    const answers = this.model.sampleSteps(
      prompts.map((p) => ({ image: imageOf(p), question: p.question, key: p.id })),
      { k: options.k, temperature: options.temperature, seed: options.seed, maxTokens: options.maxTokens, topP: options.topP, top },
    );
    reportTinyCall(
      t0,
      sum(prompts, (p) => promptTokenCount(p.question)),
      sum(answers.flat(), (a) => a.ids.length + 1),
    );
    return answers;
  }

  /** The tiny judge always reads a score from its distribution, so it never abstains. */
  async judge(items: JudgeInput[]): Promise<Judgement[]> {
    return (await this.scores(items)).map((likert) => ({ likert }));
  }

  /**
   * Likert scores per item (what judge() wraps), for scripts that want them bare. Usage: each
   * item's prompt, answer and <judge> read; one score token per criterion (read from the
   * distribution, as `pop serve` answers it).
   */
  async scores(items: JudgeInput[]): Promise<LikertScores[]> {
    const t0 = performance.now();
    const s = this.model.judgeScores(
      items.map((j) => ({ image: imageOf(j.prompt), question: j.prompt.question, answer: j.answer })),
      this.opts.judgeTemperature ?? JUDGE_TEMPERATURE,
    );
    reportTinyCall(t0, judgeReadTokens(items), items.length * CRITERIA.length);
    return s.map((row) => Object.fromEntries(CRITERIA.map((c, i) => [c, row[i]!])) as LikertScores);
  }

  /** Raw log-probs of the scores 1..5 per item and criterion (what `pop serve` reports as top_logprobs). */
  async judgeDistributions(items: JudgeInput[]): Promise<number[][][]> {
    const t0 = performance.now();
    const d = this.model.judgeDistributions(items.map((j) => ({ image: imageOf(j.prompt), question: j.prompt.question, answer: j.answer })));
    reportTinyCall(t0, judgeReadTokens(items), 0);
    return d;
  }

  /** Length-averaged log-probs (nats per token, incl. <eos>) of given answers. */
  async logProbs(items: JudgeInput[]): Promise<number[]> {
    return this.model.answerLogProbs(items.map((j) => ({ image: imageOf(j.prompt), question: j.prompt.question, answer: j.answer })));
  }

  /** SimPO; options default to {@link SIMPO_DEFAULTS}. Usage: each pair's tokens read once per epoch; nothing generated. */
  async train(pairs: PreferenceInput[], options: Partial<TinySimpoOptions> = {}, context?: TrainContext): Promise<TrainResult> {
    const t0 = performance.now();
    const o = { ...SIMPO_DEFAULTS, ...options };
    let opt: tf.Optimizer | undefined;
    if (this.opts.keepOptimizer) {
      const key = JSON.stringify([o.optimizer, o.learningRate, o.adamEpsilon, o.freezeEncoder]);
      if (this.optimizer?.key !== key) {
        this.optimizer?.opt.dispose();
        this.optimizer = { key, opt: simpoOptimizer(o) };
      }
      opt = this.optimizer.opt;
    }
    const res = trainSimpo(
      this.model,
      pairs.map((p) => ({ image: imageOf(p.prompt), question: p.prompt.question, chosen: p.chosen, rejected: p.rejected })),
      o,
      opt,
      context?.onProgress,
    );
    this.cachedVersion = undefined;
    const pairTokens = sum(pairs, (p) => promptTokenCount(p.prompt.question) + answerTokenCount(p.chosen) + answerTokenCount(p.rejected));
    reportTinyCall(t0, pairs.length ? pairTokens * o.epochs : 0, 0);
    return res;
  }

  /** Usage: one request and its compute time (the benchmark's tokens are not counted). */
  async evaluate(): Promise<EvalResult> {
    const t0 = performance.now();
    const result = evaluateModel(this.model, this.opts.benchItems ?? BENCH_ITEMS, this.opts.benchSeed ?? BENCH_SEED);
    reportTinyCall(t0, 0, 0);
    return result;
  }

  async exportWeights(): Promise<Uint8Array> {
    return this.model.serialize(this.meta);
  }

  async importWeights(bytes: Uint8Array): Promise<void> {
    const { model, meta } = TinyVlm.deserialize(bytes);
    this.optimizer?.opt.dispose();
    this.optimizer = undefined;
    this.model.dispose();
    this.model = model;
    this.meta = meta;
    this.cachedVersion = undefined;
  }

  async dispose(): Promise<void> {
    this.optimizer?.opt.dispose();
    this.model.dispose();
  }
}

const sum = <T>(xs: T[], f: (x: T) => number) => xs.reduce((n, x) => n + f(x), 0);
/** Tokens a judge reads per item: the prompt, the answer and <judge>. */
const judgeReadTokens = (items: JudgeInput[]) => sum(items, (j) => promptTokenCount(j.prompt.question) + answerTokenCount(j.answer) + 1);
