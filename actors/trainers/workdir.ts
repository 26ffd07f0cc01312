/**
 * The actor's side of the trainer contract (./contract.ts): a fresh work directory per
 * iteration, the pairs and images and settings written into it, and the trainer's metrics read
 * back. A run that a crash left behind is ended and wiped before the iteration is trained again.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PopError } from "../../protocol/mod.ts";
import type { ImageInput, PreferenceInput, SimpoOptions, TrainResult } from "../models/contract.ts";
import { encodePng } from "../images/png-encode.ts";
import { killGroup } from "../process/command.ts";
import { simpoFileSettings, TRAINER_FORMAT, TrainMetrics, trainSummaryFromMetrics, WORK_FILES, type TrainSettings } from "./contract.ts";
import { trlPreferenceRecord } from "./trl.ts";

/** The trainer finished without a readable metrics.json, or without an adapter. */
export class TrainerOutputError extends PopError {}

/** Where a run stands, for the contract's files. */
export interface TrainRun {
  experiment: string;
  peer: string;
  iteration: number;
}

/** Records the trainer's process group, so a restarted actor can end a run its crash left. */
const PID_FILE = "trainer.pid";

/** `<root>/<experiment>/<peer>/iter-<n>`, emptied; a stale trainer still running there is killed first. */
export async function freshWorkDir(root: string, run: TrainRun): Promise<string> {
  const dir = resolve(root, run.experiment, run.peer, `iter-${run.iteration}`);
  const pidFile = join(dir, PID_FILE);
  if (existsSync(pidFile)) {
    const pid = Number(await readFile(pidFile, "utf8"));
    if (Number.isInteger(pid) && pid > 1) killGroup(pid, "SIGKILL");
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, WORK_FILES.images), { recursive: true });
  await mkdir(join(dir, WORK_FILES.adapter), { recursive: true });
  return dir;
}

/** Notes the trainer's process group id in the work directory. */
export function recordTrainerPid(dir: string, pid: number): Promise<void> {
  return writeFile(join(dir, PID_FILE), String(pid));
}

/** Writes images, pairs.jsonl and settings.json; returns the settings. */
export async function writeTrainingInputs(
  dir: string,
  run: TrainRun & { baseModel: string; initAdapter: string | null },
  pairs: PreferenceInput[],
  simpo: SimpoOptions,
): Promise<TrainSettings> {
  const written = new Map<ImageInput, string>();
  const pathOf = async (img: ImageInput) => {
    let path = written.get(img);
    if (!path) {
      const bytes = img.format === "rgb8" ? encodePng(img.width, img.height, img.data) : img.data;
      const ext = img.format === "jpeg" ? "jpg" : "png";
      path = `${WORK_FILES.images}/${createHash("sha256").update(bytes).digest("hex").slice(0, 32)}.${ext}`;
      await writeFile(join(dir, path), bytes);
      written.set(img, path);
    }
    return path;
  };
  const lines: string[] = [];
  for (const p of pairs) {
    const images = [];
    for (const img of p.prompt.images) images.push(await pathOf(img));
    lines.push(JSON.stringify({ ...trlPreferenceRecord(p.prompt.question, p.chosen, p.rejected, images), prompt_id: p.prompt.id }));
  }
  await writeFile(join(dir, WORK_FILES.pairs), lines.join("\n") + (lines.length ? "\n" : ""));
  const settings: TrainSettings = {
    format: TRAINER_FORMAT,
    experiment: run.experiment,
    peer: run.peer,
    iteration: run.iteration,
    base_model: run.baseModel,
    init_adapter: run.initAdapter,
    pairs: join(dir, WORK_FILES.pairs),
    pair_count: pairs.length,
    output_dir: join(dir, WORK_FILES.adapter),
    metrics: join(dir, WORK_FILES.metrics),
    simpo: simpoFileSettings(simpo),
  };
  await writeFile(join(dir, WORK_FILES.settings), JSON.stringify(settings, null, 2) + "\n");
  return settings;
}

/** The trainer's metrics.json as a TrainResult; a missing or malformed file says what is wrong. */
export async function readMetrics(file: string): Promise<TrainResult> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new TrainerOutputError(`the trainer exited 0 but wrote no metrics to ${file}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new TrainerOutputError(`${file} is not JSON: ${text.slice(0, 200)}`, { cause: error });
  }
  const m = TrainMetrics.safeParse(raw);
  if (!m.success)
    throw new TrainerOutputError(`${file} is not the contract's metrics: ${m.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return trainSummaryFromMetrics(m.data);
}
