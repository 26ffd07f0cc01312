import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sha256Name, type PreferencePair } from "../../protocol/mod.ts";
import { poolItem, poolPromptId } from "../../actors/models/tiny/world.ts";
import { writeTinyBenchmark } from "../../actors/models/tiny/bench-export.ts";
import { readBenchmarkFile } from "../../actors/evaluation/benchmark-file.ts";
import { attachPrecision, gradePair, pairPrecision } from "../../deploy/observe/precision/tally.ts";
import { benchmarkTruth, firstTruth, tinyWorldTruth } from "../../deploy/observe/precision/truth.ts";
import { formatPrecision, precisionHtml } from "../../deploy/observe/precision/format.ts";
import * as msg from "../support/messages.ts";

const SEED = 7;
const IMG = { hash: `sha256-${"0".repeat(64)}`, format: "rgb8" as const, width: 32, height: 32 };

/** A wrong answer of the item's own kind (not merely a different spelling). */
const wrong = (answer: string) => (answer === "yes" ? "no" : answer === "no" ? "yes" : `not ${answer}`);

/** A pair on tiny pool prompt `index`, its chosen and rejected answers right or wrong as asked. */
function tinyPair(iteration: number, index: number, chosenRight: boolean, rejectedRight: boolean): PreferencePair {
  const item = poolItem(SEED, index);
  const promptId = poolPromptId(SEED, index);
  return msg.pair({
    iteration,
    pairId: `${iteration}:${promptId}`,
    promptId,
    question: item.question,
    images: [IMG],
    chosen: { candidateId: `${promptId}:a:0`, author: "a", text: chosenRight ? ` ${item.answer.toUpperCase()}. ` : wrong(item.answer), score: 0.9 },
    rejected: { candidateId: `${promptId}:b:0`, author: "b", text: rejectedRight ? item.answer : wrong(item.answer), score: 0.2 },
  });
}

describe("pair precision", () => {
  it("counts, per iteration and family, pairs whose chosen answer is right, rejected wrong, and both", () => {
    // Pool items rotate through the families: 0 colour, 1 shape, 6 colour again.
    expect([poolItem(SEED, 0).family, poolItem(SEED, 1).family, poolItem(SEED, 6).family]).toEqual(["colour", "shape", "colour"]);
    const pairs = [
      tinyPair(1, 0, true, false), // teaches the right thing
      tinyPair(1, 6, true, true), // both right: nothing wrong pushed away
      tinyPair(1, 1, false, true), // teaches an error
      tinyPair(1, 1, false, true), // stored twice: counted once below
      tinyPair(2, 12, false, false), // both wrong
      msg.pair({ iteration: 2, pairId: "2:user-1", promptId: "user-1", question: "what is this ?" }), // truth unknown: not counted
      // A tiny id with another question (a pool that borrowed the pattern) is not graded by that item.
      { ...tinyPair(2, 18, true, false), pairId: "2:borrowed", question: "what is this ?" },
    ];
    const once = [...new Map(pairs.map((p) => [p.pairId, p])).values()];
    const byIteration = pairPrecision(once, tinyWorldTruth);
    expect([...byIteration.keys()]).toEqual([1, 2]);
    expect(byIteration.get(1)).toEqual({
      colour: { pairs: 2, chosenRight: 2, rejectedWrong: 1, both: 1 },
      shape: { pairs: 1, chosenRight: 0, rejectedWrong: 0, both: 0 },
      all: { pairs: 3, chosenRight: 2, rejectedWrong: 1, both: 1 },
    });
    expect(byIteration.get(2)).toEqual({
      colour: { pairs: 1, chosenRight: 0, rejectedWrong: 1, both: 0 },
      all: { pairs: 1, chosenRight: 0, rejectedWrong: 1, both: 0 },
    });

    // The report's iterations get it (iteration 0, before any pair, gets none); duplicates count once.
    const iterations: { iteration: number; precision?: unknown }[] = [{ iteration: 0 }, { iteration: 1 }, { iteration: 2 }];
    attachPrecision(iterations as never, pairs, tinyWorldTruth);
    expect(iterations[0]!.precision).toBeUndefined();
    expect(iterations[1]!.precision).toEqual(byIteration.get(1));

    const text = formatPrecision(iterations as never);
    expect(text).toMatch(/^pair precision/);
    expect(text).toMatch(/\n\s+1 all\s+3\s+66\.7% \(2\)\s+33\.3% \(1\)\s+33\.3% \(1\)/);
    expect(text).toMatch(/\n\s+2 colour\s+1\s+0\.0% \(0\)\s+100\.0% \(1\)\s+0\.0% \(0\)/);
    expect(precisionHtml(iterations as never)).toContain('id="precision-1"');
    expect(formatPrecision([{ iteration: 1 }])).toBe("");
  });

  it("grades a prompt that is a benchmark file's item (a served peer's --bench), by its question and image bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-precision-"));
    try {
      const file = writeTinyBenchmark(dir, 2);
      const items = await readBenchmarkFile(file);
      const truth = benchmarkTruth(items);
      const it = items[0]!;
      const answer = "text" in it.expect ? it.expect.text : "";
      // The pool would have stored the same PNG under the sha256 of its bytes.
      const png = readFileSync(join(dir, "img", `${it.prompt.id}.png`));
      const asked = { promptId: "mine:1", question: it.prompt.question, images: [{ hash: sha256Name(png), format: "png" as const, width: 32, height: 32 }] };
      const pair = msg.pair({
        promptId: "mine:1",
        question: asked.question,
        images: asked.images,
        chosen: { candidateId: "mine:1:a:0", author: "a", text: answer, score: 1 },
        rejected: { candidateId: "mine:1:b:0", author: "b", text: wrong(answer), score: 0 },
      });
      expect(gradePair(pair, truth)).toEqual({ suite: it.suite, chosenRight: true, rejectedRight: false });
      expect(truth.matched()).toBe(1);
      // Another image under the same question is not that item; a tiny pool prompt still gets the tiny world's truth.
      expect(gradePair({ ...pair, images: [IMG] }, truth)).toBeUndefined();
      expect(gradePair(tinyPair(1, 0, true, false), firstTruth(truth, tinyWorldTruth))?.chosenRight).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
