/**
 * Training by a separate program under the trainer contract: prepare the work directory, run the
 * command (its step lines reported as progress and kept as the curve), read the metrics and hand
 * back the adapter directory it wrote.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { CURVE_POINTS, thin, type PreferenceInput, type SimpoOptions, type TrainContext, type TrainResult } from "../models/contract.ts";
import { reportUsage } from "../models/usage.ts";
import { runCommand, type CommandLog } from "../process/command.ts";
import { WORK_FILES } from "./contract.ts";
import { parseStepLine } from "./step-lines.ts";
import { freshWorkDir, readMetrics, recordTrainerPid, TrainerOutputError, writeTrainingInputs, type TrainRun } from "./workdir.ts";

/** Options of {@link CommandTrainer}. */
export interface CommandTrainerOptions {
  /** The trainer command, run with `sh -c` and `POP_TRAIN_DIR` set (e.g. `pop train --base m.bin`). */
  command: string;
  /** Where work directories go (`<root>/<experiment>/<peer>/iter-<n>`). */
  workRoot: string;
  /** The served model's name, written to settings.json as `base_model`. */
  baseModel: string;
  /** Kill a trainer that runs longer (default 24 h). */
  timeoutMs?: number;
  log?: CommandLog;
}

export class CommandTrainer {
  constructor(private readonly options: CommandTrainerOptions) {}

  /**
   * Trains one iteration; resolves with the metrics and the adapter directory the trainer wrote.
   * `onProgress` hears each step line the trainer prints; the result's curve is those lines'
   * points (thinned; absent when it printed none).
   * Usage: one request per run of the program, its wall time (the program's tokens are not counted).
   */
  async train(
    pairs: PreferenceInput[],
    simpo: SimpoOptions,
    run: TrainRun,
    initAdapter: string | null,
    onProgress?: TrainContext["onProgress"],
  ): Promise<{ result: TrainResult; adapterDir: string }> {
    const dir = await freshWorkDir(this.options.workRoot, run);
    const settings = await writeTrainingInputs(dir, { ...run, baseModel: this.options.baseModel, initAdapter }, pairs, simpo);
    this.options.log?.info({ dir, pairs: pairs.length, command: this.options.command }, "running the trainer");
    const t0 = performance.now();
    const curve: [number, number, number][] = [];
    const onLine = (line: string) => {
      const p = parseStepLine(line);
      if (!p) return;
      if (p.step) curve.push([p.done, p.step.loss, p.step.margin]);
      onProgress?.(p.done, p.total, p.step);
    };
    await runCommand(this.options.command, {
      label: "trainer",
      env: { POP_TRAIN_DIR: dir },
      timeoutMs: this.options.timeoutMs,
      log: this.options.log,
      onSpawn: (pid) => void recordTrainerPid(dir, pid),
      onLine,
    }).finally(() => reportUsage({ requests: 1, seconds: (performance.now() - t0) / 1000 }));
    const metrics = await readMetrics(settings.metrics);
    const result = curve.length ? { ...metrics, curve: thin(curve, CURVE_POINTS) } : metrics;
    const adapterDir = join(dir, WORK_FILES.adapter);
    if (!existsSync(adapterDir) || readdirSync(adapterDir).length === 0) {
      throw new TrainerOutputError(`the trainer wrote metrics but no adapter into ${adapterDir}`);
    }
    return { result, adapterDir };
  }
}
