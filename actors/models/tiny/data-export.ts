/**
 * Labelled training data from the tiny world for models outside this process (the PyTorch peer,
 * actors/process-peer/torch_peer/): items of the training stream with their right answers, and
 * synthetic judge candidates with the world's ground-truth scores, drawn exactly as the shipped
 * members' pretraining draws them. Disjoint from the benchmark suites and the pool by seed domain.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { hashSeed, makeRng } from "../../random/rng.ts";
import { CRITERIA_SCORES, classifyAnswer, drawCategory, synthCandidate } from "./criteria.ts";
import { IMG, renderScene, trainItem } from "./world.ts";

/** File names of an export. */
export const TINY_DATA_FILES = { items: "items.jsonl", images: "images.u8" } as const;

/** One line of items.jsonl. */
export interface TinyDataRow {
  id: string;
  question: string;
  /** The exact answer (word tokens joined by single spaces). */
  answer: string;
  /** The question's family. */
  suite: string;
  /** Candidate answers with their 1..5 scores in criteria order (helpfulness, correctness, coherence, complexity, verbosity). */
  judge: { answer: string; scores: number[] }[];
}

/**
 * Writes `items` training items of stream `seed` into `dir`: items.jsonl (one {@link TinyDataRow}
 * a line) and images.u8, item i's 32x32 RGB image at byte offset i * 3072 (raw, row-major: one
 * read for a reader in any language, where 20k PNGs would take a PNG decoder). Returns the
 * items.jsonl path.
 */
export function writeTinyData(dir: string, items: number, seed: number, judgePerItem = 2): string {
  mkdirSync(dir, { recursive: true });
  const rows: string[] = [];
  const fd = openSync(join(dir, TINY_DATA_FILES.images), "w");
  try {
    for (let i = 0; i < items; i++) {
      const item = trainItem(seed, i);
      const img = renderScene(item.scene);
      if (img.data.length !== IMG * IMG * 3) throw new RangeError(`image of ${item.id} has ${img.data.length} bytes`);
      writeSync(fd, img.data);
      const judge = Array.from({ length: judgePerItem }, (_, j) => {
        const rng = makeRng(hashSeed("judge-ex", seed, item.id, j));
        const answer = synthCandidate(item.family, item.answer, drawCategory(rng), rng);
        return { answer, scores: [...CRITERIA_SCORES[classifyAnswer(item.family, item.answer, answer)]] };
      });
      const row: TinyDataRow = { id: item.id, question: item.question, answer: item.answer, suite: item.family, judge };
      rows.push(JSON.stringify(row));
    }
  } finally {
    closeSync(fd);
  }
  const file = join(dir, TINY_DATA_FILES.items);
  writeFileSync(file, rows.join("\n") + "\n");
  return file;
}
