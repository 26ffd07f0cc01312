/**
 * The pairs of each iteration as JSONL (pairs-iter<N>.jsonl) in TRL's conversational preference
 * format, with the images written beside them under images/. Image paths are absolute, so that
 * `load_dataset("json", data_files=…)` (which resolves a relative path from the current
 * directory, not from the JSONL file) finds them from anywhere; the Parquet export embeds the
 * bytes instead and survives moving the folder.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PreferencePair } from "../../../protocol/mod.ts";
import { trlPreferenceRecord } from "../../../actors/trainers/trl.ts";
import { imageFileName, type ImageFiles } from "./images.ts";

/** A pair as a TRL-style (conversational, vision) preference record, with its provenance. */
export function trlRecord(p: PreferencePair, imagePaths: string[]) {
  return {
    ...trlPreferenceRecord(p.question, p.chosen.text, p.rejected.text, imagePaths),
    score_chosen: p.chosen.score,
    score_rejected: p.rejected.score,
    margin: p.margin,
    chosen_author: p.chosen.author,
    rejected_author: p.rejected.author,
    judges: p.judges,
    prompt_id: p.promptId,
    pair_id: p.pairId,
    iteration: p.iteration,
  };
}

/** Writes pairs-iter<N>.jsonl for each iteration given (an iteration without pairs gets an empty file) and the images. */
export async function writePairsJsonl(dir: string, byIteration: ReadonlyMap<number, readonly PreferencePair[]>, images: ImageFiles): Promise<string[]> {
  const root = resolve(dir);
  mkdirSync(join(root, "images"), { recursive: true });
  const written = new Set<string>();
  const files: string[] = [];
  for (const [iteration, pairs] of [...byIteration].sort((a, b) => a[0] - b[0])) {
    const lines: string[] = [];
    for (const p of pairs) {
      const paths: string[] = [];
      for (const ref of p.images) {
        const path = join(root, imageFileName(ref));
        if (!written.has(ref.hash)) {
          const file = await images.file(ref);
          if (file) writeFileSync(path, file);
          written.add(ref.hash);
        }
        paths.push(path);
      }
      lines.push(JSON.stringify(trlRecord(p, paths)));
    }
    const file = join(root, `pairs-iter${iteration}.jsonl`);
    writeFileSync(file, lines.join("\n") + (lines.length ? "\n" : ""));
    files.push(file);
  }
  return files;
}
