/**
 * The tiny world's held-out suites as a benchmark file (JSONL + PNG images), the format
 * `pop actor --bench` reads: so a tiny model served over HTTP is benchmarked exactly as the
 * embedded one benchmarks itself, and users can see what a benchmark file looks like.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePng } from "../../images/png-encode.ts";
import { benchmarkSuites, BENCH_ITEMS, BENCH_SEED, FAMILIES, renderScene } from "./world.ts";

/** Writes `bench.jsonl` and `img/*.png` into `dir`; returns the JSONL's path. */
export function writeTinyBenchmark(dir: string, items = BENCH_ITEMS, seed = BENCH_SEED): string {
  mkdirSync(join(dir, "img"), { recursive: true });
  const suites = benchmarkSuites(items, seed);
  const rows = FAMILIES.flatMap((f) =>
    suites[f].map((it) => {
      const img = renderScene(it.scene);
      writeFileSync(join(dir, "img", `${it.id}.png`), encodePng(img.width, img.height, img.data));
      return JSON.stringify({ id: it.id, image: `img/${it.id}.png`, question: it.question, suite: f, answer: it.answer });
    }),
  );
  const file = join(dir, "bench.jsonl");
  writeFileSync(file, rows.join("\n") + "\n");
  return file;
}
