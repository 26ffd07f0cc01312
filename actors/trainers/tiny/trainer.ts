/**
 * The tiny model's trainer behind the trainer contract (actors/trainers/contract.ts): what
 * `pop train` runs for peers served by `pop serve`. It trains with the same embedded SimPO code
 * and settings an in-process tiny peer uses; its "adapter" is the whole trained checkpoint
 * (`model.bin`), small enough to travel.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { ImageInput, PreferenceInput, TrainContext } from "../../models/contract.ts";
import { sniffImage } from "../../images/codec.ts";
import { simpoOptionsFromFile, trainMetricsOf, type TrainMetrics } from "../contract.ts";
import { readTrainSettings } from "../settings-file.ts";
import { TinyBackend } from "../../models/tiny/backend.ts";

export { WorkDirError } from "../settings-file.ts";

/** The adapter file name inside an adapter directory. */
export const TINY_ADAPTER_FILE = "model.bin";

type Log = (line: string) => void;

/**
 * Trains the work directory's pairs from its init adapter (else `base`) and writes the adapter and
 * metrics; `onStep` hears each step (done of total, with its figures).
 */
export async function trainWorkDir(dir: string, base: string, log: Log = () => undefined, onStep?: TrainContext["onProgress"]): Promise<TrainMetrics> {
  const started = performance.now();
  const settings = readTrainSettings(dir);
  const init = settings.init_adapter ? join(settings.init_adapter, TINY_ADAPTER_FILE) : base;
  const pairs = await readPairs(dir, settings.pairs);
  log(`iteration ${settings.iteration}: ${pairs.length} pairs, ${settings.simpo.epochs} epochs in batches of ${settings.simpo.batch_size}, from ${init}`);
  const model = await TinyBackend.load(init);
  try {
    const r = pairs.length
      ? await model.train(
          pairs,
          simpoOptionsFromFile(settings.simpo),
          onStep && { experiment: "", peer: "", iteration: settings.iteration, onProgress: onStep },
        )
      : { steps: 0, pairs: 0, lossFirst: 0, lossLast: 0, marginBefore: 0, marginAfter: 0, ms: 0 };
    await writeFile(join(settings.output_dir, TINY_ADAPTER_FILE), await model.exportWeights());
    const metrics = trainMetricsOf(r, (performance.now() - started) / 1000);
    // Last: its presence tells the actor that training finished.
    await writeFile(settings.metrics, JSON.stringify(metrics, null, 2) + "\n");
    log(
      `trained ${r.steps} steps: loss ${r.lossFirst.toFixed(3)} -> ${r.lossLast.toFixed(3)}, margin ${r.marginBefore.toFixed(3)} -> ${r.marginAfter.toFixed(3)}`,
    );
    return metrics;
  } finally {
    await model.dispose();
  }
}

type Turn = { content: { type: string; text?: string }[] };

async function readPairs(dir: string, file: string): Promise<PreferenceInput[]> {
  const text = await readFile(resolve(dir, file), "utf8");
  const images = new Map<string, ImageInput>();
  const out: PreferenceInput[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { prompt: Turn[]; chosen: Turn[]; rejected: Turn[]; images: string[]; prompt_id?: string };
    const textOf = (turns: Turn[]) =>
      turns
        .at(-1)
        ?.content.filter((c) => c.type === "text")
        .map((c) => c.text ?? "")
        .join("\n") ?? "";
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
    out.push({
      prompt: { id: r.prompt_id ?? `line-${i + 1}`, question: textOf(r.prompt), images: imgs },
      chosen: textOf(r.chosen),
      rejected: textOf(r.rejected),
    });
  }
  return out;
}
