/** The truth an observer command grades pairs against: the tiny world's pool, and a benchmark file where given. */
import { readBenchmarkFile } from "../../../actors/evaluation/benchmark-file.ts";
import { benchmarkTruth, firstTruth, tinyWorldTruth, type TruthOf } from "./truth.ts";

/** A command's truth, and what to say afterwards about the benchmark file. */
export interface TruthSource {
  truthOf: TruthOf;
  /** Undefined, or a line saying that none of the graded prompts was an item of the file (so it added nothing). */
  note: () => string | undefined;
}

/** The tiny world's truth, then `benchFile`'s items (read and checked now, so a bad file fails first). */
export async function truthFor(benchFile: string | undefined): Promise<TruthSource> {
  if (!benchFile) return { truthOf: tinyWorldTruth, note: () => undefined };
  const bench = benchmarkTruth(await readBenchmarkFile(benchFile));
  return {
    truthOf: firstTruth(tinyWorldTruth, bench),
    note: () =>
      bench.matched() === 0
        ? `none of the run's prompts is an item of ${benchFile} (a pool's prompt must be an item's question with its image files byte for byte); no pair precision from it`
        : undefined,
  };
}
