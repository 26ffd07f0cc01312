/**
 * The model-backend contract, split by what a peer does with a model: answer, judge, train,
 * evaluate, and hold weights. A backend implements the capabilities it has (a remote
 * OpenAI-compatible server answers and judges but does not train itself); the actor asks
 * {@link capabilitiesOf} before relying on an optional one. Everything here is plain data so a
 * backend can run in a worker thread or another process behind the same interface.
 *
 * Criteria and Likert scores are the protocol's (protocol/schemas.ts), never redefined here.
 */
import { z } from "zod";
import { TrainingConfig, type Criterion, type JudgingConfig, type LikertScores, type TrainSummary } from "../../protocol/mod.ts";

export type { Criterion, LikertScores };

/**
 * An image as the object store keeps it: raw 8-bit RGB (`rgb8`, row-major,
 * `data.length === width * height * 3`) or the encoded bytes of a PNG or JPEG file, kept as
 * they are so a remote model sees exactly what the user supplied.
 */
export interface ImageInput {
  format: "rgb8" | "png" | "jpeg";
  width: number;
  height: number;
  data: Uint8Array;
}

/** Raw 8-bit RGB pixels, row-major, `data.length === width * height * 3`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What a model is asked: a question about zero or more images. */
export interface PromptInput {
  /** Stable id of the prompt (deterministic, used for seeding and dedupe). */
  id: string;
  question: string;
  images: ImageInput[];
}

/** Sampling settings for {@link Answerer.generate}. */
export interface SamplingOptions {
  /** Candidates per prompt. */
  k: number;
  /** Softmax temperature; 0 means greedy. */
  temperature: number;
  /** Upper bound on generated tokens per answer (backend default when absent). */
  maxTokens?: number;
  /** Seed; the same seed, weights and prompts give the same answers where the backend can promise it. */
  seed: number;
  /** Nucleus sampling: each token drawn from the most likely tokens holding this share of the mass (absent = 1, all). */
  topP?: number;
}

/** One thing to judge: a candidate answer to a prompt. */
export interface JudgeInput {
  prompt: PromptInput;
  answer: string;
}

/**
 * A judge's verdict on one candidate: 1–5 per criterion (backends that read the score from an
 * output distribution give the expected score, a real number in [1, 5]; normalisation to
 * [0, 1] is the vote's business), or an abstention with the reason when the judge's output
 * could not be read as a score. The vote leaves abstentions out.
 */
export type Judgement = { likert: LikertScores } | { abstained: string };

/** One SimPO training example. */
export interface PreferenceInput {
  prompt: PromptInput;
  chosen: string;
  rejected: string;
}

/**
 * SimPO settings of one training run (Meng et al. 2024): the experiment's TrainingConfig
 * (protocol/schemas.ts, where each field is documented) less what is not the run's to know (the
 * decay, already applied to `learningRate`; which pairs to train on), plus the run's seed.
 * `sftWeight` and `judgeAnchor` may be absent: the backend's default (each backend documents its own).
 */
export const SimpoOptions = TrainingConfig.omit({ learningRateDecay: true, pairsFor: true }).partial({ sftWeight: true }).extend({
  /** Seeds the run's shuffling (and whatever else the backend draws). */
  seed: z.number().int(),
});
export type SimpoOptions = z.output<typeof SimpoOptions>;

/**
 * One run's options from the experiment's training settings, the iteration's learning rate
 * (after decay) and the run's seed.
 */
export function simpoOptionsOf(training: TrainingConfig, run: { learningRate: number; seed: number }): SimpoOptions {
  // Parsing drops the settings that are not the run's and checks the two per-run values.
  return SimpoOptions.parse({ ...training, ...run });
}

/** What a training run did: the protocol's TrainSummary, under the backend contract's name. */
export type TrainResult = TrainSummary;

/** Most points a training curve keeps (it travels in the training_done event). */
export const CURVE_POINTS = 200;

/** At most `n` evenly spaced entries of `xs`, the last always among them. */
export function thin<T>(xs: T[], n: number): T[] {
  if (xs.length <= n) return xs;
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(xs[Math.round(((i + 1) * xs.length) / n) - 1]!);
  return out;
}

/** Accuracy per benchmark suite (0..1) and their unweighted mean. */
export interface EvalResult {
  suites: Record<string, number>;
  average: number;
  items: number;
  /** Accuracy of guessing per suite, where the benchmark knows it (reports mark it). */
  chance?: Record<string, number>;
  ms: number;
}

/** Identity of the model behind a backend. */
export interface BackendInfo {
  /** Backend kind, e.g. "tiny" or "openai". */
  kind: string;
  /** Identifies the current weights (a content hash; changes after training or a new adapter). */
  version: string;
  /** Number of trainable parameters, when known. */
  parameters?: number;
}

/** Answering: `k` sampled answers per prompt, in prompt order. */
export interface Answerer {
  generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]>;
}

/**
 * How to judge: the experiment's judging settings (protocol/schemas.ts, JudgingConfig). A backend
 * that asks a model server for scores follows them; one that scores in process may ignore them.
 * Absent: the defaults.
 */
export type JudgeOptions = Partial<JudgingConfig>;

/** One generated token as a server reports it: its text (concatenated, a reply's text), log-prob and likeliest alternatives. */
export interface GeneratedToken {
  token: string;
  logprob: number;
  /** The most likely tokens at this position, best first (as many as asked for). */
  top: { token: string; logprob: number }[];
}

/** One answer with what its generation did (what `pop serve` needs for logprobs and finish_reason). */
export interface GeneratedAnswer {
  text: string;
  tokens: GeneratedToken[];
  /** "length": the token limit (`maxTokens`, or the model's own) cut it before it ended. */
  finish: "stop" | "length";
}

/** Answering with per-token log-probs: {@link Answerer.generate}'s answers, each with its tokens. */
export interface DetailedAnswerer {
  generateDetailed(prompts: PromptInput[], options: SamplingOptions & { topLogprobs: number }): Promise<GeneratedAnswer[][]>;
}

/** Judging: absolute scoring, each candidate on its own, all five criteria. */
export interface Judge {
  judge(items: JudgeInput[], options?: JudgeOptions): Promise<Judgement[]>;
}

/**
 * The judge's raw distribution: for each item and criterion (protocol order), the natural-log
 * probabilities of the scores 1..5. What a server needs to answer `top_logprobs` honestly.
 */
export interface ScoreDistributions {
  judgeDistributions(items: JudgeInput[]): Promise<number[][][]>;
}

/** Which run a training belongs to (a trainer program names its work by it). */
export interface TrainContext {
  experiment: string;
  peer: string;
  /** The iteration whose pairs these are. */
  iteration: number;
  /** Called as training goes: `done` of `total` optimisation steps (backends that can tell), with that step's figures where known. */
  onProgress?: (done: number, total: number, step?: TrainStep) => void;
}

/** One optimisation step's figures, for training curves. */
export interface TrainStep {
  /** The total loss that was minimised. */
  loss: number;
  /** Mean length-averaged log-prob margin, chosen minus rejected, on the step's batch. */
  margin: number;
  /** Each term of the loss, unweighted (e.g. simpo, nll, anchor). */
  terms?: Record<string, number>;
}

/** Training: one SimPO run over the pairs, continuing from the current weights. */
export interface Trainer {
  train(pairs: PreferenceInput[], options: SimpoOptions, context?: TrainContext): Promise<TrainResult>;
}

/** What is being evaluated, for evaluators that hand it to an outside tool. */
export interface EvalContext {
  /** The iteration whose training the weights include (0: before any). */
  iteration: number;
  modelVersion: string;
}

/** Evaluation on held-out benchmark suites. */
export interface Evaluator {
  evaluate(context?: EvalContext): Promise<EvalResult>;
}

/** Weights that can travel: a self-describing, versioned file. */
export interface WeightStore {
  exportWeights(): Promise<Uint8Array>;
  importWeights(bytes: Uint8Array): Promise<void>;
}

/** What every backend has: an identity and a way to release what it holds. */
export interface BackendCore {
  info(): Promise<BackendInfo>;
  dispose(): Promise<void>;
}

/**
 * A model behind an actor: it answers and judges; training, evaluation, weights and raw score
 * distributions are optional. Every method may be slow: callers keep it off their event loop.
 */
export type ModelBackend = BackendCore & Answerer & Judge & Partial<Trainer & Evaluator & WeightStore & ScoreDistributions & DetailedAnswerer>;

/** The optional capabilities, by method name. */
export const OPTIONAL_METHODS = ["train", "evaluate", "exportWeights", "importWeights", "judgeDistributions", "generateDetailed"] as const;
export type OptionalMethod = (typeof OPTIONAL_METHODS)[number];

/** Which optional methods a backend has. */
export function capabilitiesOf(backend: ModelBackend): OptionalMethod[] {
  return OPTIONAL_METHODS.filter((m) => typeof backend[m] === "function");
}

/** A backend that can take weights another process trained (a replica's, or its own before a restart). */
export function canLoadWeights(b: ModelBackend): b is ModelBackend & WeightStore {
  return typeof b.exportWeights === "function" && typeof b.importWeights === "function";
}

/** A backend that can train and hand its weights to replicas. */
export function canTrain(b: ModelBackend): b is ModelBackend & Trainer & WeightStore {
  return typeof b.train === "function" && typeof b.exportWeights === "function" && typeof b.importWeights === "function";
}
