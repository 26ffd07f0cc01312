/** `pop tiny-bench`: write the tiny world's held-out suites as a benchmark file for `pop actor --bench`. */
import { resolve } from "node:path";
import { writeTinyBenchmark } from "../../../actors/models/tiny/bench-export.ts";
import { UsageError, type Flags } from "../args.ts";

export const tinyBenchHelp = `pop tiny-bench --out DIR [--items N]

Writes the embedded tiny world's six held-out suites (colour, shape, count, ocr, existence,
spatial) as a benchmark file: DIR/bench.jsonl, one item a line
  {"id": "...", "image": "img/<id>.png", "question": "what color is the circle ?", "suite": "colour", "answer": "red"}
and the images under DIR/img/. 'pop actor --bench DIR/bench.jsonl' scores a peer on it (exact
match per suite), e.g. a tiny model behind 'pop serve', which then scores exactly what the
embedded model scores itself. Your own benchmarks use the same format (or "choices" and a letter
as "answer").

  --out DIR     where to write                                   required
  --items N     items per suite                                  default: 100`;

export async function runTinyBench(flags: Flags): Promise<void> {
  const out = flags.string("out");
  if (!out) throw new UsageError("--out DIR is required", tinyBenchHelp);
  const items = flags.int("items", { min: 1, max: 100_000 }) ?? 100;
  flags.rejectUnknown();
  const file = writeTinyBenchmark(resolve(out), items);
  process.stdout.write(`wrote ${items * 6} items to ${file}\n`);
}
