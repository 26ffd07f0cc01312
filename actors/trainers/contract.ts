/**
 * The trainer contract: how an actor hands an iteration's training to a separate program (the
 * tiny model's `pop train`, the Python SimPO LoRA trainer, a user's own), and what it expects
 * back. Everything is files in one work directory, so any language can implement it.
 *
 * The actor creates a fresh work directory and writes into it:
 * - `settings.json` ({@link TrainSettings}): what to train, from which adapter, with which SimPO
 *   settings, and where to put the result;
 * - `pairs.jsonl`: one preference pair a line in TRL's conversational vision shape
 *   (`prompt` = a user turn `[{"type":"image"}..., {"type":"text","text":...}]`, `chosen` and
 *   `rejected` = assistant turns, `images` = image paths **relative to the work directory**), plus
 *   `score_chosen`, `score_rejected`, `prompt_id`;
 * - `images/`: the pairs' images (PNG or JPEG as loaded; generated images as PNG).
 *
 * It runs the trainer command (`sh -c`) with `POP_TRAIN_DIR` set to the work directory's
 * absolute path. The command writes:
 * - the adapter into `settings.output_dir` (any files: a peft adapter's
 *   `adapter_config.json` + `adapter_model.safetensors`, the tiny model's `model.bin`), starting
 *   from `settings.init_adapter` when there is one (the previous iteration's adapter);
 * - `metrics.json` ({@link TrainMetrics}) last: its presence says training finished.
 * It exits 0 on success. Its output lines on stdout/stderr go to the actor's log; a line per
 * optimisation step in the form `step <done>/<total> loss <x> margin <y>` (./step-lines.ts) shows
 * in the actor's heartbeats while it runs and becomes the run's training curve (training_done,
 * the report, the dashboard), as the embedded trainer's steps do.
 *
 * Both files are zod schemas here, derived from the protocol's TrainingConfig and TrainSummary
 * (protocol/schemas.ts, where each field's meaning is documented) under snake_case names by one
 * table each; the actor's writer and every TypeScript reader convert through those tables.
 */
import { z } from "zod";
import { Iteration, TrainSummary } from "../../protocol/mod.ts";
import { SimpoOptions } from "../models/contract.ts";
import { fromFileKeys, toFileKeys } from "./file-keys.ts";

/** Version tag of the contract, in settings.json. */
export const TRAINER_FORMAT = "pop-trainer/1";

/** File names inside the work directory. */
export const WORK_FILES = { settings: "settings.json", pairs: "pairs.jsonl", images: "images", adapter: "adapter", metrics: "metrics.json" } as const;

/**
 * settings.json's `simpo`: each run option (SimpoOptions, actors/models/contract.ts) the file
 * carries, under its name there, in the file's order. judgeAnchor is not carried: a trainer
 * program applies its own default.
 */
export const SIMPO_FILE_KEYS = {
  beta: "beta",
  gamma: "gamma",
  learningRate: "learning_rate",
  epochs: "epochs",
  batchSize: "batch_size",
  sftWeight: "sft_weight",
  seed: "seed",
} as const;

/**
 * settings.json's `simpo`: the run's SimPO options, each as SimpoOptions checks it. The file
 * always has `sft_weight` (the actor writes 0 for an absent one; a reader takes absent as 0).
 */
export const SimpoFileSettings = z.object(toFileKeys({ ...SimpoOptions.shape, sftWeight: SimpoOptions.shape.sftWeight.unwrap() }, SIMPO_FILE_KEYS));
export type SimpoFileSettings = z.output<typeof SimpoFileSettings>;

/** settings.json: written by the actor, read by the trainer. Paths are absolute. */
export const TrainSettings = z.object({
  format: z.literal(TRAINER_FORMAT),
  experiment: z.string(),
  peer: z.string(),
  /** The iteration whose pairs these are (1 is the first). */
  iteration: Iteration,
  /** The served model's name, as the serving engine lists it (not necessarily the weights' id). */
  base_model: z.string(),
  /** The previous iteration's adapter directory to start from; null: start from the base weights. */
  init_adapter: z.string().nullable(),
  /** Absolute path of pairs.jsonl. */
  pairs: z.string(),
  /** Number of pairs in it. */
  pair_count: z.number().int().min(0),
  /** Where the trainer writes the adapter (absolute; exists and is empty). */
  output_dir: z.string(),
  /** Where the trainer writes {@link TrainMetrics} (absolute). */
  metrics: z.string(),
  simpo: SimpoFileSettings,
});
export type TrainSettings = z.output<typeof TrainSettings>;

/** settings.json's `simpo` for a run's options. */
export function simpoFileSettings(options: SimpoOptions): SimpoFileSettings {
  return toFileKeys({ ...options, sftWeight: options.sftWeight ?? 0 }, SIMPO_FILE_KEYS);
}

/** A run's options from settings.json's `simpo`. */
export function simpoOptionsFromFile(simpo: SimpoFileSettings): SimpoOptions {
  return fromFileKeys<SimpoOptions, typeof SIMPO_FILE_KEYS>(simpo, SIMPO_FILE_KEYS);
}

/** metrics.json: the TrainSummary fields it carries, under their names there, in the file's order; then `seconds` (TrainSummary's `ms` / 1000). */
export const METRICS_FILE_KEYS = {
  steps: "steps",
  pairs: "pairs",
  lossFirst: "loss_first",
  lossLast: "loss_last",
  marginBefore: "margin_before",
  marginAfter: "margin_after",
} as const;

/** metrics.json: written by the trainer when it has finished. */
export const TrainMetrics = z.object({ ...toFileKeys(TrainSummary.shape, METRICS_FILE_KEYS), seconds: TrainSummary.shape.ms });
export type TrainMetrics = z.output<typeof TrainMetrics>;

/** metrics.json for what a run did in `seconds`. */
export function trainMetricsOf(result: TrainSummary, seconds: number): TrainMetrics {
  return { ...toFileKeys(result, METRICS_FILE_KEYS), seconds };
}

/** What a run did, from its metrics.json. */
export function trainSummaryFromMetrics(metrics: TrainMetrics): TrainSummary {
  return { ...fromFileKeys<TrainSummary, typeof METRICS_FILE_KEYS>(metrics, METRICS_FILE_KEYS), ms: metrics.seconds * 1000 };
}
