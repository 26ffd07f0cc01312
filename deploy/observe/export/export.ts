/**
 * A run's preference pairs as a dataset (`pop export`, and the demo's output folder): one
 * Parquet file per iteration with the images embedded and a dataset card (README.md), or the
 * JSONL files with the images beside them.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { VotingConfig, type ExperimentConfig, type PreferencePair, type Verdict } from "../../../protocol/mod.ts";
import { datasetCard, type CardSplit } from "./card.ts";
import type { ImageFiles } from "./images.ts";
import { judgeScoresOf, pairKey } from "./judge-scores.ts";
import { writePairsJsonl } from "./jsonl.ts";
import { pairRow, writePairsParquet, type PairRow } from "./parquet.ts";

/** The formats `pop export` writes. */
export const EXPORT_FORMATS = ["parquet", "jsonl"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** What to export: a stored run's pairs, and what gives them context. */
export interface ExportInput {
  experiment: string;
  pairs: readonly PreferencePair[];
  /** The verdicts behind the pairs (for `judge_scores`); without them the column holds empty lists. */
  verdicts?: readonly Verdict[];
  /** The run's settings (the card describes its voting; the judges' scores combine by its rule). */
  config?: ExperimentConfig;
  /** Iterations written even without pairs (JSONL only: an empty file says the iteration had none). */
  iterations?: readonly number[];
}

/** What an export wrote. */
export interface ExportResult {
  /** Absolute paths of the data files, in iteration order, then the card (Parquet). */
  files: string[];
  pairs: number;
  /** Parquet: the iterations written, each a split of the card (none for JSONL). */
  splits: CardSplit[];
  /** Images the run's store no longer had: named in the rows, without bytes or file. */
  missingImages: number;
}

/** Writes the pairs into `dir` in `format`; `suiteOf` names a question's suite where the run's world can tell. */
export async function exportPairs(
  dir: string,
  input: ExportInput,
  options: { format: ExportFormat; images: ImageFiles; suiteOf?: (question: string) => string | undefined },
): Promise<ExportResult> {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  const byIteration = new Map<number, PreferencePair[]>((input.iterations ?? []).map((i) => [i, []]));
  for (const p of input.pairs) byIteration.set(p.iteration, [...(byIteration.get(p.iteration) ?? []), p]);
  if (options.format === "jsonl") {
    const files = await writePairsJsonl(root, byIteration, options.images);
    return { files, pairs: input.pairs.length, splits: [], missingImages: await countMissing(input.pairs, options.images) };
  }
  const judgeScores = judgeScoresOf(input.pairs, input.verdicts ?? [], input.config?.voting ?? VotingConfig.parse({}));
  const files: string[] = [];
  const splits: CardSplit[] = [];
  let missingImages = 0;
  // An iteration without pairs gets no file: an empty split is nothing to train on.
  for (const [iteration, pairs] of [...byIteration].filter(([, ps]) => ps.length > 0).sort((a, b) => a[0] - b[0])) {
    const rows: PairRow[] = [];
    for (const p of [...pairs].sort((a, b) => a.pairId.localeCompare(b.pairId, "en", { numeric: true }))) {
      const suite = options.suiteOf?.(p.question);
      const { row, missing } = await pairRow(p, options.images, { ...(suite ? { suite } : {}), judgeScores: judgeScores.get(pairKey(p)) ?? [] });
      rows.push(row);
      missingImages += missing;
    }
    const file = `pairs-iter${iteration}.parquet`;
    writePairsParquet(join(root, file), rows);
    files.push(join(root, file));
    splits.push({ iteration, file, pairs: rows.length });
  }
  const card = join(root, "README.md");
  writeFileSync(card, datasetCard(root, input.experiment, splits, input.config));
  files.push(card);
  return { files, pairs: input.pairs.length, splits, missingImages };
}

async function countMissing(pairs: readonly PreferencePair[], images: ImageFiles): Promise<number> {
  let missing = 0;
  for (const ref of new Map(pairs.flatMap((p) => p.images.map((r) => [r.hash, r] as const))).values()) if (!(await images.file(ref))) missing++;
  return missing;
}
