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
 * It exits 0 on success. Progress lines on stdout/stderr go to the actor's log.
 */

/** Version tag of the contract, in settings.json. */
export const TRAINER_FORMAT = "pop-trainer/1";

/** File names inside the work directory. */
export const WORK_FILES = { settings: "settings.json", pairs: "pairs.jsonl", images: "images", adapter: "adapter", metrics: "metrics.json" } as const;

/** settings.json: written by the actor, read by the trainer. Paths are absolute. */
export interface TrainSettings {
  format: typeof TRAINER_FORMAT;
  experiment: string;
  peer: string;
  /** The iteration whose pairs these are (1 is the first). */
  iteration: number;
  /** The served model's name, as the serving engine lists it (not necessarily the weights' id). */
  base_model: string;
  /** The previous iteration's adapter directory to start from; null: start from the base weights. */
  init_adapter: string | null;
  /** Absolute path of pairs.jsonl. */
  pairs: string;
  /** Number of pairs in it. */
  pair_count: number;
  /** Where the trainer writes the adapter (absolute; exists and is empty). */
  output_dir: string;
  /** Where the trainer writes {@link TrainMetrics} (absolute). */
  metrics: string;
  /** SimPO (Meng et al. 2024): loss = -log sigmoid(beta/|y_w| log p(y_w|x) - beta/|y_l| log p(y_l|x) - gamma) + sft_weight x NLL(y_w)/|y_w|. */
  simpo: {
    beta: number;
    /** Absolute target margin (not gamma/beta). */
    gamma: number;
    learning_rate: number;
    epochs: number;
    /** Pairs per optimizer step (after gradient accumulation). */
    batch_size: number;
    /** Weight of the length-normalised NLL on chosen answers (CPO-SimPO); 0 is pure SimPO. */
    sft_weight: number;
    seed: number;
  };
}

/** metrics.json: written by the trainer when it has finished. */
export interface TrainMetrics {
  steps: number;
  pairs: number;
  loss_first: number;
  loss_last: number;
  /** Mean length-normalised log-prob margin chosen - rejected over the pairs, before and after training. */
  margin_before: number;
  margin_after: number;
  seconds: number;
}
