/**
 * Where the right answer of a prompt is known, outside the panel: the tiny world's pool prompts
 * (their id names the generator's item, answer included) and the items of a benchmark file. Only
 * observers read it (the report, the dashboard); the coordinator and the peers never do, so the
 * panel's teaching stays label-free.
 */
import { sha256Name, type ImageRef } from "../../../protocol/mod.ts";
import type { Expected } from "../../../actors/evaluation/scoring.ts";
import type { BenchmarkItem } from "../../../actors/evaluation/benchmark-file.ts";
import { parsePoolPromptId, poolItem } from "../../../actors/models/tiny/world.ts";

/** A prompt's right answer and the family (suite) it counts towards. */
export interface Truth {
  suite: string;
  expected: Expected;
}

/** What a truth source is asked about: a stored prompt as a pair carries it. */
export interface AskedPrompt {
  promptId: string;
  question: string;
  images: readonly ImageRef[];
}

/** The truth of a prompt, or undefined where the source does not know it. */
export type TruthOf = (prompt: AskedPrompt) => Truth | undefined;

/** The most tiny-world items kept (rebuilding one is cheap; the cache only spares repeats). */
const MAX_CACHED = 100_000;
const tinyCache = new Map<string, Truth | undefined>();

/**
 * The tiny world's truth: a prompt whose id is a tiny pool id (`tiny-pool-<seed>-<index>`) and
 * whose question is that item's question is graded against the item's answer. The question is
 * compared so that a pool that only borrows the id pattern is not graded by the wrong item.
 */
export const tinyWorldTruth: TruthOf = (prompt) => {
  if (tinyCache.has(prompt.promptId)) return checkQuestion(tinyCache.get(prompt.promptId), prompt.question);
  const at = parsePoolPromptId(prompt.promptId);
  let truth: (Truth & { question: string }) | undefined;
  if (at) {
    const item = poolItem(at.poolSeed, at.index);
    truth = { suite: item.family, expected: { text: item.answer }, question: item.question };
  }
  if (tinyCache.size >= MAX_CACHED) tinyCache.clear();
  tinyCache.set(prompt.promptId, truth);
  return checkQuestion(truth, prompt.question);
};

function checkQuestion(truth: Truth | undefined, question: string): Truth | undefined {
  if (!truth || (truth as Truth & { question: string }).question !== question) return undefined;
  return { suite: truth.suite, expected: truth.expected };
}

/** The key of a prompt's content: the question as asked and its images' content hashes. */
const contentKey = (question: string, hashes: readonly string[]) => JSON.stringify([question, ...hashes]);

/**
 * The truth of a benchmark file's items (read with `readBenchmarkFile`): a prompt is an item when
 * its question is the item's prompt text and its images are the item's image files byte for byte
 * (a pool loaded from files stores each image under the sha256 of its bytes). `matched` counts
 * the prompts this source knew, so a caller can say when a run's prompts are not its items.
 */
export function benchmarkTruth(items: readonly BenchmarkItem[]): TruthOf & { matched: () => number } {
  const byContent = new Map<string, Truth>();
  for (const it of items)
    byContent.set(
      contentKey(
        it.prompt.question,
        it.prompt.images.map((i) => sha256Name(i.data)),
      ),
      { suite: it.suite, expected: it.expect },
    );
  const seen = new Set<string>();
  const truthOf = (prompt: AskedPrompt) => {
    const truth = byContent.get(
      contentKey(
        prompt.question,
        prompt.images.map((i) => i.hash),
      ),
    );
    if (truth) seen.add(prompt.promptId);
    return truth;
  };
  return Object.assign(truthOf, { matched: () => seen.size });
}

/** The first source that knows a prompt's truth answers it. */
export function firstTruth(...sources: TruthOf[]): TruthOf {
  return (prompt) => {
    for (const s of sources) {
      const t = s(prompt);
      if (t) return t;
    }
    return undefined;
  };
}
