/** Benchmark evaluation of a tiny model over the world's held-out suites (greedy, exact match). */
import type { EvalResult } from "../contract.ts";
import type { TinyVlm } from "./model.ts";
import { benchmarkSuites, BENCH_ITEMS, BENCH_SEED, chanceOf, FAMILIES, renderScene } from "./world.ts";
import { words } from "./vocab.ts";

const cache = new Map<string, ReturnType<typeof buildSuites>>();
function buildSuites(items: number, seed: number) {
  const s = benchmarkSuites(items, seed);
  return FAMILIES.map((f) => ({
    family: f,
    items: s[f].map((it) => ({ image: renderScene(it.scene), question: it.question, key: it.id, answer: it.answer })),
  }));
}

/** Accuracy per family suite and the unweighted mean. */
export function evaluateModel(model: TinyVlm, items = BENCH_ITEMS, seed = BENCH_SEED): EvalResult {
  const t0 = performance.now();
  const key = `${items}/${seed}`;
  if (!cache.has(key)) cache.set(key, buildSuites(items, seed));
  const suites = cache.get(key)!;
  const all = suites.flatMap((s) => s.items);
  const out = model.sample(all, 1, 0, 0);
  const res: Record<string, number> = {};
  let off = 0;
  for (const s of suites) {
    let ok = 0;
    s.items.forEach((it, i) => {
      if (words(out[off + i]![0]!).join(" ") === it.answer) ok++;
    });
    off += s.items.length;
    res[s.family] = ok / s.items.length;
  }
  const vals = Object.values(res);
  const chance = Object.fromEntries(FAMILIES.map((f) => [f, chanceOf(f)]));
  return { suites: res, average: vals.reduce((a, b) => a + b, 0) / vals.length, items: all.length, chance, ms: performance.now() - t0 };
}
