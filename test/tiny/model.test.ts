import { describe, expect, it, beforeAll } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { initTf } from "../../actors/models/tiny/tf.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { VOCAB } from "../../actors/models/tiny/vocab.ts";
import {
  poolPrompt,
  poolPrompts,
  poolItem,
  benchmarkSuite,
  renderScene,
  trainItem,
  parsePoolPromptId,
  FAMILIES,
  type Family,
} from "../../actors/models/tiny/world.ts";
import { classifyAnswer, synthCandidate } from "../../actors/models/tiny/criteria.ts";
import { makeRng } from "../../actors/random/rng.ts";
import type { EvalResult } from "../../actors/models/contract.ts";
import { CRITERIA } from "../../protocol/mod.ts";
import { TinyVlm, parseWeights, scoreAt } from "../../actors/models/tiny/model.ts";
import { PANEL, type MemberSpec } from "../../actors/models/tiny/pretrain.ts";

const TINY = { hidden: 16, embed: 8, c1: 4, c2: 6, att: 4, vocab: VOCAB };
beforeAll(async () => {
  await initTf();
});

describe("world", () => {
  it("is deterministic from the seed and keeps suites disjoint from the pool", () => {
    const a = poolPrompt(7, 13),
      b = poolPrompt(7, 13),
      c = poolPrompt(8, 13);
    expect(a.id).toBe("tiny-pool-7-13");
    expect(parsePoolPromptId(a.id)).toEqual({ poolSeed: 7, index: 13 });
    expect(a.question).toBe(b.question);
    expect(Buffer.from(a.images[0]!.data).equals(Buffer.from(b.images[0]!.data))).toBe(true);
    expect(Buffer.from(a.images[0]!.data).equals(Buffer.from(c.images[0]!.data))).toBe(false);
    expect(a.images[0]!.data.length).toBe(32 * 32 * 3);
    expect(poolPrompts(7, 10, 5)[3]!.question).toBe(poolPrompt(7, 13).question);
    const s1 = benchmarkSuite("ocr", 20),
      s2 = benchmarkSuite("ocr", 20);
    expect(s1.map((x) => x.answer)).toEqual(s2.map((x) => x.answer));
    expect(s1.every((x) => x.question === "what does the text say ?" && x.answer.split(" ").length >= 2)).toBe(true);
    const pix = new Set(benchmarkSuite("colour", 50).map((x) => Buffer.from(renderScene(x.scene).data).toString("base64")));
    for (let i = 0; i < 300; i++) expect(pix.has(Buffer.from(renderScene(poolItem(7, i).scene).data).toString("base64"))).toBe(false);
    for (const f of FAMILIES) expect(benchmarkSuite(f, 5).every((x) => x.family === f)).toBe(true);
  });

  it("labels synthetic candidates by category", () => {
    const rng = makeRng(1);
    expect(classifyAnswer("ocr", "a h t", "a h t")).toBe("correct");
    expect(classifyAnswer("ocr", "a h t", "a h")).toBe("partial");
    expect(classifyAnswer("ocr", "a h t", "it is a h t")).toBe("verbose");
    expect(classifyAnswer("ocr", "a h t", "a e t")).toBe("wrong");
    expect(classifyAnswer("colour", "red", "yes")).toBe("wrongtype");
    expect(classifyAnswer("colour", "red", "")).toBe("malformed");
    for (let i = 0; i < 50; i++) {
      const it = trainItem(3, i);
      expect(classifyAnswer(it.family, it.answer, synthCandidate(it.family, it.answer, "wrong", rng))).toBe("wrong");
    }
  });
});

describe("judge decoding", () => {
  it("decodes a score distribution at a temperature: expected score at 1, sharper below, mode at 0", () => {
    const lp = [0.05, 0.05, 0.1, 0.2, 0.6].map(Math.log);
    expect(scoreAt(lp, 1)).toBeCloseTo(0.05 + 0.1 + 0.3 + 0.8 + 3, 6);
    expect(scoreAt(lp, 0.25)).toBeGreaterThan(scoreAt(lp, 1));
    expect(scoreAt(lp, 0.25)).toBeLessThan(5);
    expect(scoreAt(lp, 0)).toBe(5);
  });
});

describe("TinyBackend", () => {
  it("gives the same samples for the same seed and greedy at temperature 0", async () => {
    const be = await TinyBackend.create(5, TINY);
    const ps = poolPrompts(3, 0, 6);
    const x = await be.generate(ps, { k: 3, temperature: 1, seed: 42 });
    const y = await be.generate(ps, { k: 3, temperature: 1, seed: 42 });
    const z = await be.generate(ps, { k: 3, temperature: 1, seed: 43 });
    expect(x).toEqual(y);
    expect(x).not.toEqual(z);
    expect(x.length).toBe(6);
    expect(x.every((l) => l.length === 3)).toBe(true);
    // per-prompt streams: a prompt's answers do not depend on the rest of the batch
    expect((await be.generate(ps.slice(2, 3), { k: 3, temperature: 1, seed: 42 }))[0]).toEqual(x[2]);
    const g = await be.generate(ps, { k: 2, temperature: 0, seed: 1 });
    expect(g.every((l) => l[0] === l[1])).toBe(true);
    await be.dispose();
  });

  it("round-trips weights through the versioned file with identical outputs", async () => {
    const be = await TinyBackend.create(6, TINY);
    const ps = poolPrompts(3, 0, 4);
    const bytes = await be.exportWeights();
    expect(Buffer.from(bytes.subarray(0, 8)).toString("latin1")).toBe("POPTINY\0");
    const be2 = await TinyBackend.load(bytes);
    expect((await be2.info()).version).toBe((await be.info()).version);
    const items = ps.map((p) => ({ prompt: p, answer: "red" }));
    expect(await be2.judge(items)).toEqual(await be.judge(items));
    expect(await be2.logProbs(items)).toEqual(await be.logProbs(items));
    expect(await be2.generate(ps, { k: 2, temperature: 1, seed: 9 })).toEqual(await be.generate(ps, { k: 2, temperature: 1, seed: 9 }));
    const v0 = (await be.info()).version;
    await be.train(
      ps.map((p) => ({ prompt: p, chosen: "red", rejected: "no" })),
      { beta: 2, gamma: 1, learningRate: 1e-2, epochs: 1, batchSize: 4, seed: 1 },
    );
    expect((await be.info()).version).not.toBe(v0);
    await be2.importWeights(await be.exportWeights());
    expect((await be2.info()).version).toBe((await be.info()).version);
    const bad = bytes.slice();
    bad[0] = 0;
    await expect(TinyBackend.load(bad)).rejects.toThrow(/magic/);
    await be.dispose();
    await be2.dispose();
  });

  it("judge scores lie in [1,5]; a pretrained checkpoint scores correct answers above wrong ones", async () => {
    const path = "actors/models/tiny/checkpoints/lostspace.bin";
    expect(existsSync(path)).toBe(true);
    const be = await TinyBackend.load(path);
    const rng = makeRng(2);
    // families this member reads well (0.98 and 0.99)
    const items = (["count", "ocr"] as const).flatMap((f) => benchmarkSuite(f, 20, 77));
    const prompt = (it: (typeof items)[number]) => ({ id: it.id, question: it.question, images: [{ format: "rgb8" as const, ...renderScene(it.scene) }] });
    const good = await be.scores(items.map((it) => ({ prompt: prompt(it), answer: it.answer })));
    const bad = await be.scores(items.map((it) => ({ prompt: prompt(it), answer: synthCandidate(it.family, it.answer, "wrong", rng) })));
    const mean = (xs: typeof good) => xs.reduce((a, s) => a + CRITERIA.reduce((b, c) => b + s[c], 0) / 5, 0) / xs.length;
    for (const s of [...good, ...bad])
      for (const c of CRITERIA) {
        expect(s[c]).toBeGreaterThanOrEqual(1);
        expect(s[c]).toBeLessThanOrEqual(5);
      }
    expect(mean(good)).toBeGreaterThan(mean(bad) + 1);
    await be.dispose();
  });
});

describe("the second look", () => {
  it("added to a model changes none of its answers, log-probs or judgements, and survives the weights file", () => {
    const base = TinyVlm.init(4, TINY);
    const grown = TinyVlm.withSecondLook(base, 4);
    expect(grown.params.lookQ).toBeDefined();
    const items = [0, 1, 2, 3]
      .map((i) => trainItem(5, i))
      .map((it) => ({ image: renderScene(it.scene), question: it.question, answer: it.answer, key: it.id }));
    expect(grown.sample(items, 2, 1, 3)).toEqual(base.sample(items, 2, 1, 3));
    expect(grown.answerLogProbs(items)).toEqual(base.answerLogProbs(items));
    expect(grown.judgeScores(items)).toEqual(base.judgeScores(items));
    const back = TinyVlm.deserialize(grown.serialize()).model;
    expect(back.config.secondLook).toBe(true);
    expect(back.weightHash()).toBe(grown.weightHash());
  });
});

describe("the shipped panel", () => {
  it("shows the designed gaps: each member well below its peers on the families it lacks, similar overall strength", async () => {
    const evs = new Map<string, EvalResult>();
    for (const m of PANEL) {
      const be = await TinyBackend.load(`actors/models/tiny/checkpoints/${m.name}.bin`);
      evs.set(m.name, await be.evaluate());
      await be.dispose();
    }
    const bestPeer = (m: MemberSpec, f: Family) => Math.max(...PANEL.filter((p) => p !== m).map((p) => evs.get(p.name)!.suites[f]!));
    // every family is a gap of one member, and a peer that knows it can teach it
    for (const f of FAMILIES)
      expect(
        PANEL.filter((m) => m.gaps.includes(f)),
        f,
      ).toHaveLength(1);
    for (const m of PANEL) {
      for (const f of m.gaps) {
        expect(bestPeer(m, f), `best peer of ${m.name} on ${f}`).toBeGreaterThanOrEqual(0.8);
        expect(evs.get(m.name)!.suites[f]!, `${m.name} on ${f}`).toBeLessThan(bestPeer(m, f) - 0.15);
      }
    }
    // the OCR-dumb member (few text-reading answers in pretraining) reads far worse than its peers
    const ocrdumb = PANEL.find((m) => m.answerKeep?.ocr !== undefined)!;
    expect(evs.get(ocrdumb.name)!.suites.ocr!).toBeLessThan(0.2);
    // members differ in their language backbone's size, not only in their data
    const sizes = new Set<number>();
    for (const m of PANEL) sizes.add(parseWeights(new Uint8Array(readFileSync(`actors/models/tiny/checkpoints/${m.name}.bin`))).config.hidden);
    expect(sizes.size).toBeGreaterThan(1);
    const avgs = [...evs.values()].map((e) => e.average);
    expect(Math.max(...avgs) - Math.min(...avgs)).toBeLessThan(0.2);
  }, 60_000);
});
