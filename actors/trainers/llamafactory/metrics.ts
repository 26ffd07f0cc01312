/**
 * After `llamafactory-cli train <work>/llamafactory/simpo_lora.yaml` (see llamafactory.ts), turns
 * what LLaMA-Factory left in `settings.output_dir` into the contract's metrics.json:
 * `npx tsx actors/trainers/llamafactory/metrics.ts [work_dir]` (default `$POP_TRAIN_DIR`).
 *
 * LLaMA-Factory's DPO workflow (train/dpo/workflow.py) saves the adapter, then Hugging Face's
 * `train_results.json` + `all_results.json` (`train_runtime`, `train_loss`, ...) and
 * `trainer_state.json` (`global_step`, `log_history`), then, when evaluation is on, evaluates and
 * writes `eval_results.json` (and merges it into all_results.json). Its DPO trainer logs per step
 * `loss`, `rewards/{chosen,rejected,margins,accuracies}`, `logps/{chosen,rejected}` and
 * `logits/...` (eval ones prefixed `eval_`); with `pref_loss: simpo` the logps are already
 * length-normalised (divided by the answer's token count), and rewards are beta × logps. So our
 * margin (mean length-normalised log-prob margin chosen - rejected) is logps/chosen - logps/rejected,
 * or rewards/margins / beta.
 *
 * margin_before: the `eval_on_start` entry (all pairs, before the first update); without it, the
 * first training step's batch (also before any update, but one batch). margin_after:
 * eval_results.json (all pairs, after training); without it, the last eval entry after step 0, else
 * the last training step's batch (measured before that step's update: an approximation).
 *
 * It also prints the logged training steps as the contract's step lines (../step-lines.ts), after
 * the fact, so the actor gets the run's curve as from the trainers that print them live.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { TrainMetrics } from "../contract.ts";
import { readTrainSettings } from "../settings-file.ts";
import { formatStepLine } from "../step-lines.ts";

type LogEntry = Record<string, number | undefined>;

/** The parts of Hugging Face's trainer_state.json we read. */
export interface HfTrainerState {
  global_step: number;
  max_steps?: number;
  log_history: LogEntry[];
}

function readJson<T>(path: string): T | undefined {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as T) : undefined;
}

/** Length-normalised margin of one log entry (`prefix` "" or "eval_"), or undefined when it has none. */
export function entryMargin(entry: LogEntry | undefined, prefix: "" | "eval_", beta: number): number | undefined {
  if (!entry) return undefined;
  const c = entry[`${prefix}logps/chosen`];
  const r = entry[`${prefix}logps/rejected`];
  if (typeof c === "number" && typeof r === "number") return c - r;
  const m = entry[`${prefix}rewards/margins`];
  return typeof m === "number" && beta > 0 ? m / beta : undefined;
}

/** TrainMetrics from LLaMA-Factory's output files in `outputDir`. */
export function llamaFactoryMetrics(outputDir: string, pairs: number, beta: number): TrainMetrics {
  const state = readJson<HfTrainerState>(join(outputDir, "trainer_state.json"));
  if (!state || !Array.isArray(state.log_history)) throw new Error(`no trainer_state.json in ${outputDir}: did llamafactory-cli train finish?`);
  const history = state.log_history;
  const steps = history.filter((e) => typeof e.loss === "number");
  if (steps.length === 0) throw new Error(`trainer_state.json in ${outputDir} logs no training loss (logging_steps too large?)`);
  const evals = history.filter((e) => typeof e["eval_loss"] === "number");
  const train = readJson<LogEntry>(join(outputDir, "train_results.json")) ?? readJson<LogEntry>(join(outputDir, "all_results.json"));
  const finalEval = readJson<LogEntry>(join(outputDir, "eval_results.json")) ?? readJson<LogEntry>(join(outputDir, "all_results.json"));
  const summary = history.find((e) => typeof e.train_runtime === "number");

  const startEval = evals.find((e) => e.step === 0);
  const laterEvals = evals.filter((e) => (e.step ?? 0) > 0);
  const marginBefore = entryMargin(startEval, "eval_", beta) ?? entryMargin(steps[0], "", beta);
  const marginAfter =
    entryMargin(finalEval, "eval_", beta) ?? entryMargin(laterEvals[laterEvals.length - 1], "eval_", beta) ?? entryMargin(steps[steps.length - 1], "", beta);
  if (marginBefore === undefined || marginAfter === undefined) throw new Error(`no logps/rewards margins in ${outputDir}/trainer_state.json`);

  return {
    steps: state.global_step,
    pairs,
    loss_first: steps[0]!.loss!,
    loss_last: steps[steps.length - 1]!.loss!,
    margin_before: marginBefore,
    margin_after: marginAfter,
    seconds: train?.train_runtime ?? summary?.train_runtime ?? 0,
  };
}

/** The contract's step lines for each training step `trainer_state.json` in `outputDir` logged (its loss and batch margin). */
export function llamaFactoryStepLines(outputDir: string, beta: number): string[] {
  const state = readJson<HfTrainerState>(join(outputDir, "trainer_state.json"));
  if (!state || !Array.isArray(state.log_history)) return [];
  const total = state.max_steps ?? state.global_step;
  return state.log_history
    .filter((e) => typeof e.loss === "number" && typeof e.step === "number")
    .map((e) => {
      const margin = entryMargin(e, "", beta);
      return formatStepLine(e.step!, total, margin === undefined ? undefined : { loss: e.loss!, margin });
    });
}

/**
 * Reads `<workDir>/settings.json`, checks that the adapter is in output_dir, and writes
 * metrics.json (last, as the contract asks). Returns the metrics.
 */
export function writeLlamaFactoryMetrics(workDir: string): TrainMetrics {
  const settings = readTrainSettings(resolve(workDir));
  const out = settings.output_dir;
  if (!existsSync(join(out, "adapter_config.json")) || !["adapter_model.safetensors", "adapter_model.bin"].some((f) => existsSync(join(out, f)))) {
    throw new Error(`no peft adapter (adapter_config.json + adapter_model.safetensors) in ${out}`);
  }
  const metrics = llamaFactoryMetrics(out, settings.pair_count, settings.simpo.beta);
  for (const line of llamaFactoryStepLines(out, settings.simpo.beta)) console.error(line);
  writeFileSync(settings.metrics, JSON.stringify(metrics, null, 2) + "\n");
  return metrics;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const work = process.argv[2] ?? process.env.POP_TRAIN_DIR;
  if (!work) {
    console.error("usage: npx tsx actors/trainers/llamafactory/metrics.ts <work_dir> (default $POP_TRAIN_DIR)");
    process.exit(2);
  }
  try {
    console.log(JSON.stringify(writeLlamaFactoryMetrics(work)));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
