/**
 * The model-backend contract. An actor drives any model through this interface: the embedded
 * tiny model (actors/tiny), a vLLM or other OpenAI-compatible server, or anything else.
 * Everything here is plain data so that a backend can run in a worker thread or another
 * process behind the same interface.
 */

/** The five HelpSteer2-style criteria every judge scores, in this fixed order. */
export const CRITERIA = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"] as const;
export type Criterion = (typeof CRITERIA)[number];

/** An image as raw 8-bit RGB, row-major, `data.length === width * height * 3`. */
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
  images: RgbImage[];
}

/** Sampling settings for {@link ModelBackend.generate}. */
export interface SamplingOptions {
  /** Candidates per prompt. */
  k: number;
  /** Softmax temperature; 0 means greedy. */
  temperature: number;
  /** Upper bound on generated tokens per answer (backend default when absent). */
  maxTokens?: number;
  /** Seed; the same seed, weights and prompts give the same answers. */
  seed: number;
}

/** One thing to judge: a candidate answer to a prompt. */
export interface JudgeInput {
  prompt: PromptInput;
  answer: string;
}

/**
 * A judge's scores for one candidate, on the 1–5 Likert scale per criterion. Backends that read
 * the score from their own output distribution return the expected score (a real number in
 * [1, 5]); normalisation to [0, 1] is `(s - 1) / 4` and is done by the caller.
 */
export type LikertScores = Record<Criterion, number>;

/** One SimPO training example. */
export interface PreferenceInput {
  prompt: PromptInput;
  chosen: string;
  rejected: string;
}

/** SimPO hyper-parameters (Meng et al. 2024). Backends document their defaults. */
export interface SimpoOptions {
  /** Reward scale beta. */
  beta: number;
  /** Absolute target margin gamma (not gamma/beta). */
  gamma: number;
  learningRate: number;
  epochs: number;
  batchSize: number;
  seed: number;
  /** Weight of an NLL term on the chosen answers (CPO-SimPO, TRL's `cpo_alpha`); 0 or absent: pure SimPO. */
  sftWeight?: number;
}

/** What a training run did, for logs and the experiment record. */
export interface TrainResult {
  steps: number;
  pairs: number;
  lossFirst: number;
  lossLast: number;
  /** Mean length-averaged log-prob margin chosen − rejected, before and after training. */
  marginBefore: number;
  marginAfter: number;
  ms: number;
}

/** Accuracy per benchmark suite (0..1) and their unweighted mean. */
export interface EvalResult {
  suites: Record<string, number>;
  average: number;
  items: number;
  ms: number;
}

/** Identity of the loaded weights. */
export interface BackendInfo {
  /** Backend kind, e.g. "tiny" or "openai". */
  kind: string;
  /** Content hash of the current weights (changes after training). */
  version: string;
  /** Number of trainable parameters, when known. */
  parameters?: number;
}

/** A model behind the actor. Every method may be slow: callers keep it off their event loop. */
export interface ModelBackend {
  info(): Promise<BackendInfo>;
  /** `k` sampled answers per prompt, in prompt order. */
  generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]>;
  /** Absolute scoring: each candidate on its own, all five criteria. */
  judge(items: JudgeInput[]): Promise<LikertScores[]>;
  /** One SimPO run over the pairs, continuing from the current weights. */
  train(pairs: PreferenceInput[], options: SimpoOptions): Promise<TrainResult>;
  /** The backend's held-out benchmark suites. */
  evaluate(): Promise<EvalResult>;
  /** Serialised weights (a self-describing, versioned file). */
  exportWeights(): Promise<Uint8Array>;
  importWeights(bytes: Uint8Array): Promise<void>;
  dispose(): Promise<void>;
}
