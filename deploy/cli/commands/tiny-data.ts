/** `pop tiny-data`: labelled training data from the tiny world, for a model in another program (the PyTorch peer's pretraining). */
import { resolve } from "node:path";
import { writeTinyData } from "../../../actors/models/tiny/data-export.ts";
import { UsageError, type Flags } from "../args.ts";

export const tinyDataHelp = `pop tiny-data --out DIR [--items N] [--seed S] [--judge N]

Writes labelled items of the embedded tiny world's training stream (all six families, drawn in
rotation by the seed; disjoint from the benchmark suites of 'pop tiny-bench' and from the pool):
  DIR/items.jsonl   one item a line:
    {"id": "train-1-0", "question": "how many shapes are there ?", "answer": "two", "suite": "count",
     "judge": [{"answer": "three", "scores": [1, 1, 2, 1, 2]}, ...]}
    judge: synthetic candidate answers with the world's ground-truth scores 1..5 in the order
    helpfulness, correctness, coherence, complexity, verbosity (as the shipped members learn to judge)
  DIR/images.u8     the images, raw: item i's 32x32 RGB pixels (row-major, 3072 bytes) at offset i*3072
The PyTorch peer's pretraining reads it (actors/process-peer/torch_peer/README.md).

  --out DIR     where to write                                   required
  --items N     items                                            default: 24000 (the PyTorch peer's recipe)
  --seed S      the training stream's seed                       default: 1
  --judge N     judge candidates per item                        default: 2`;

export async function runTinyData(flags: Flags): Promise<void> {
  const out = flags.string("out");
  if (!out) throw new UsageError("--out DIR is required", tinyDataHelp);
  const items = flags.int("items", { min: 1, max: 1_000_000 }) ?? 24_000;
  const seed = flags.int("seed", { min: 0 }) ?? 1;
  const judge = flags.int("judge", { min: 0, max: 16 }) ?? 2;
  flags.rejectUnknown();
  const file = writeTinyData(resolve(out), items, seed, judge);
  process.stdout.write(`wrote ${items} items to ${file}\n`);
}
