/**
 * The tiny model's trainer behind the trainer contract (actors/trainers/contract.ts): what
 * `pop train` runs for peers served by `pop serve`. It trains with the same embedded SimPO code
 * and settings an in-process tiny peer uses; its "adapter" is the whole trained checkpoint
 * (`model.bin`), small enough to travel.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PopError } from "../../../protocol/mod.ts";
import type { ImageInput, PreferenceInput, TrainContext } from "../../models/contract.ts";
import { sniffImage } from "../../images/codec.ts";
import { TRAINER_FORMAT, type TrainMetrics, type TrainSettings } from "../contract.ts";
import { TinyBackend } from "../../models/tiny/backend.ts";

/** The work directory does not hold what the contract says it holds. */
export class WorkDirError extends PopError {}

/** The adapter file name inside an adapter directory. */
export const TINY_ADAPTER_FILE = "model.bin";

type Log = (line: string) => void;

/**
 * Trains the work directory's pairs from its init adapter (else `base`) and writes the adapter and
 * metrics; `onStep` hears each step (done of total, with its figures).
 */
export async function trainWorkDir(dir: string, base: string, log: Log = () => undefined, onStep?: TrainContext["onProgress"]): Promise<TrainMetrics> {
  const started = performance.now();
  const settings = await readSettings(dir);
  const init = settings.init_adapter ? join(settings.init_adapter, TINY_ADAPTER_FILE) : base;
  const pairs = await readPairs(dir, settings.pairs);
  log(`iteration ${settings.iteration}: ${pairs.length} pairs, ${settings.simpo.epochs} epochs in batches of ${settings.simpo.batch_size}, from ${init}`);
  const model = await TinyBackend.load(init);
  try {
    const s = settings.simpo;
    const r = pairs.length
      ? await model.train(pairs, { beta: s.beta, gamma: s.gamma, learningRate: s.learning_rate, epochs: s.epochs, batchSize: s.batch_size, sftWeight: s.sft_weight, seed: s.seed }, onStep && { experiment: "", peer: "", iteration: settings.iteration, onProgress: onStep })
      : { steps: 0, pairs: 0, lossFirst: 0, lossLast: 0, marginBefore: 0, marginAfter: 0, ms: 0 };
    await writeFile(join(settings.output_dir, TINY_ADAPTER_FILE), await model.exportWeights());
    const metrics: TrainMetrics = {
      steps: r.steps, pairs: r.pairs, loss_first: r.lossFirst, loss_last: r.lossLast,
      margin_before: r.marginBefore, margin_after: r.marginAfter, seconds: (performance.now() - started) / 1000,
    };
    // Last: its presence tells the actor that training finished.
    await writeFile(settings.metrics, JSON.stringify(metrics, null, 2) + "\n");
    log(`trained ${r.steps} steps: loss ${r.lossFirst.toFixed(3)} -> ${r.lossLast.toFixed(3)}, margin ${r.marginBefore.toFixed(3)} -> ${r.marginAfter.toFixed(3)}`);
    return metrics;
  } finally {
    await model.dispose();
  }
}

async function readSettings(dir: string): Promise<TrainSettings> {
  const file = join(dir, "settings.json");
  let s: TrainSettings;
  try {
    s = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new WorkDirError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (s.format !== TRAINER_FORMAT) throw new WorkDirError(`${file} is format '${String(s.format)}', this trainer reads '${TRAINER_FORMAT}'`);
  return s;
}

type Turn = { content: { type: string; text?: string }[] };

async function readPairs(dir: string, file: string): Promise<PreferenceInput[]> {
  const text = await readFile(resolve(dir, file), "utf8");
  const images = new Map<string, ImageInput>();
  const out: PreferenceInput[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { prompt: Turn[]; chosen: Turn[]; rejected: Turn[]; images: string[]; prompt_id?: string };
    const textOf = (turns: Turn[]) => turns.at(-1)?.content.filter((c) => c.type === "text").map((c) => c.text ?? "").join("\n") ?? "";
    const imgs: ImageInput[] = [];
    for (const p of r.images) {
      let img = images.get(p);
      if (!img) {
        const data = new Uint8Array(await readFile(resolve(dir, p)));
        img = { ...sniffImage(data), data };
        images.set(p, img);
      }
      imgs.push(img);
    }
    out.push({ prompt: { id: r.prompt_id ?? `line-${i + 1}`, question: textOf(r.prompt), images: imgs }, chosen: textOf(r.chosen), rejected: textOf(r.rejected) });
  }
  return out;
}
