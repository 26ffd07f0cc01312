import { describe, expect, it, beforeAll } from "vitest";
import { initTf, tf } from "../../actors/models/tiny/tf.ts";
import { simpoFromMargin, TinyVlm, imagesTensor, ENCODER_PARAMS } from "../../actors/models/tiny/model.ts";
import { trainSimpo, type SimpoPair } from "../../actors/models/tiny/train.ts";
import { trainItem, renderScene } from "../../actors/models/tiny/world.ts";
import { BANNED_IN_ANSWERS, MAX_ANSWER, PROMPT_LEN, answerSequence } from "../../actors/models/tiny/vocab.ts";

const TINY = { hidden: 16, embed: 8, c1: 4, c2: 6, att: 4 };
let cfgVocab: string[];

beforeAll(async () => {
  await initTf();
  const { VOCAB } = await import("../../actors/models/tiny/vocab.ts");
  cfgVocab = VOCAB;
});

const logSigmoid = (x: number) => -Math.log1p(Math.exp(-x));

describe("SimPO loss", () => {
  it("matches -log sigmoid(beta/|yw| lp_w - beta/|yl| lp_l - gamma) on hand-computed inputs", () => {
    // summed log-probs and lengths
    const cases = [
      { lw: -2.0, nw: 2, ll: -6.0, nl: 3, beta: 2, gamma: 1 },
      { lw: -9.0, nw: 3, ll: -1.0, nl: 1, beta: 2.5, gamma: 0.5 },
      { lw: -0.5, nw: 1, ll: -0.5, nl: 1, beta: 10, gamma: 3 },
    ];
    for (const c of cases) {
      const expected = -logSigmoid((c.beta / c.nw) * c.lw - (c.beta / c.nl) * c.ll - c.gamma);
      const got = tf.tidy(() => simpoFromMargin(tf.tensor1d([c.lw / c.nw - c.ll / c.nl]), c.beta, c.gamma).dataSync()[0]!);
      expect(got).toBeCloseTo(expected, 5);
    }
    // hand values: case 0: x = 2*(-1) - 2*(-2) - 1 = 1 -> log(1+e^-1) = 0.31326
    expect(-logSigmoid(1)).toBeCloseTo(0.31326, 4);
    const batch = tf.tidy(() => simpoFromMargin(tf.tensor1d([1, 0]), 2, 1).dataSync()[0]!);
    expect(batch).toBeCloseTo((-logSigmoid(1) - logSigmoid(-1)) / 2, 5);
  });

  it.each([
    ["the default decoder", {}, ["outW"]],
    ["a per-position query and the attention skip", { posQuery: true, attSkip: true }, ["attP", "attS"]],
    ["the second look", { secondLook: true }, ["lookQ", "lookK", "lookS"]],
  ])("model gradient passes a finite-difference check: %s", (_, options, names) => {
    const model = TinyVlm.init(3, { ...TINY, vocab: cfgVocab, ...options });
    // zero at init (a trained member's are not): every path carries a gradient when they are set
    for (const [n, seed] of [
      ["attS", 5],
      ["lookQ", 6],
      ["lookS", 7],
    ] as const)
      model.params[n]?.assign(tf.randomNormal(model.params[n].shape, 0, 0.3, "float32", seed));
    const its = [0, 1, 2].map((i) => trainItem(9, i));
    const images = imagesTensor(its.map((x) => renderScene(x.scene)));
    const seqs = TinyVlm.judgeBatch([
      ...its.map((x) => ({ question: x.question, answer: x.answer })),
      ...its.map((x, i) => ({ question: x.question, answer: its[(i + 1) % 3]!.answer })),
    ]);
    // the judge anchor's targets: some fixed distribution over the five scores
    const anchor = tf.logSoftmax(tf.randomNormal([6 * 5, 5], 0, 1, "float32", 4)) as tf.Tensor2D;
    const total = () => {
      const s = model.simpoStep(images, seqs, 2, 1, 1, anchor);
      return tf.add(s.loss, s.anchor!) as tf.Scalar;
    };
    const lossOf = () => tf.tidy(() => total().dataSync()[0]!);
    for (const name of names) {
      const v = model.params[name]!;
      const { grads } = tf.variableGrads(total, [v]);
      const g = grads[v.name]!.dataSync();
      const base = v.dataSync().slice() as Float32Array;
      // check the 5 largest-gradient coordinates with central differences
      const idx = Array.from(g.keys())
        .sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!))
        .slice(0, 5);
      const eps = 1e-2;
      for (const i of idx) {
        const plus = base.slice();
        plus[i] += eps;
        v.assign(tf.tensor(plus, v.shape));
        const lp = lossOf();
        const minus = base.slice();
        minus[i] -= eps;
        v.assign(tf.tensor(minus, v.shape));
        const lm = lossOf();
        v.assign(tf.tensor(base, v.shape));
        const fd = (lp - lm) / (2 * eps);
        expect(Math.abs(fd - g[i]!)).toBeLessThan(0.05 * Math.abs(g[i]!) + 1e-3);
      }
      expect(Math.abs(g[idx[0]!]!), name).toBeGreaterThan(1e-4);
      tf.dispose(grads[v.name]!);
    }
    tf.dispose([images, seqs.tokens, seqs.mask, seqs.at, anchor]);
    model.dispose();
  });

  it("one pass over the judge sequences gives the answers' log-probs and the judgements of separate passes", () => {
    const model = TinyVlm.init(8, { ...TINY, vocab: cfgVocab });
    const items = [0, 1, 2, 3, 4].map((i) => {
      const x = trainItem(10, i);
      // answers of every length up to the longest, and one cut at the limit
      return { image: renderScene(x.scene), question: x.question, answer: i === 4 ? "a e h l t u" : x.answer };
    });
    const both = model.answerAndJudge(items);
    const alone = model.answerLogProbs(items);
    both.avgLogProb.forEach((lp, i) => expect(lp).toBeCloseTo(alone[i]!, 5));
    expect(both.judge).toEqual(model.judgeDistributions(items));
    model.dispose();
  });

  it("with a per-position query, decoding one token at a time sees the positions teacher forcing does", () => {
    const model = TinyVlm.init(9, { ...TINY, vocab: cfgVocab, posQuery: true });
    const attP = model.params.attP!;
    // large offsets, so a token decoded at the wrong position would change what is attended to
    attP.assign(tf.randomNormal(attP.shape, 0, 4, "float32", 3));
    const items = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => {
      const x = trainItem(12, i);
      return { image: renderScene(x.scene), question: x.question, key: String(i) };
    });
    const greedy = model.sample(items, 1, 0, 1, MAX_ANSWER).map((c) => c[0]!);
    const banned = new Set(BANNED_IN_ANSWERS);
    items.forEach((it, i) => {
      const { tokens, len } = answerSequence(it.question, greedy[i]!);
      // the last token decoded: <eos>, or the last word when the answer hit the length limit
      const decoded = greedy[i]!.split(" ").filter(Boolean).length < MAX_ANSWER ? len : len - 1;
      const logits = tf.tidy(() => {
        const hs = model.run(model.encode(imagesTensor([it.image])), tf.tensor2d(tokens, [1, tokens.length], "int32"));
        return hs
          .slice(PROMPT_LEN - 1, PROMPT_LEN - 1 + decoded)
          .map((h) => Array.from(tf.add(tf.matMul(h, model.params.outW as tf.Tensor2D), model.params.outB!).dataSync()));
      });
      logits.forEach((row, j) => {
        const best = row.reduce((b, v, t) => (!banned.has(t) && (b < 0 || v > row[b]!) ? t : b), -1);
        expect(best).toBe(tokens[PROMPT_LEN + j]);
      });
    });
    model.dispose();
  });

  it("a few SimPO steps on fixed pairs raise the chosen-minus-rejected margin", () => {
    const model = TinyVlm.init(4, { ...TINY, vocab: cfgVocab });
    const pairs: SimpoPair[] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => {
      const x = trainItem(11, i);
      return { image: renderScene(x.scene), question: x.question, chosen: x.answer, rejected: "it is the" };
    });
    const res = trainSimpo(model, pairs, { epochs: 5, batchSize: 8, learningRate: 1e-2, beta: 2, gamma: 1 });
    expect(res.steps).toBe(5);
    expect(res.marginAfter).toBeGreaterThan(res.marginBefore + 0.2);
    expect(res.lossLast).toBeLessThan(res.lossFirst);
    // Each term is reported; the SimPO term is what fell, and the total is their weighted sum.
    expect(Object.keys(res.terms!)).toEqual(["simpo", "nll", "anchor"]);
    expect(res.terms!.simpo[1]).toBeLessThan(res.terms!.simpo[0]);
    const [s0, n0, a0] = [res.terms!.simpo[0], res.terms!.nll[0], res.terms!.anchor[0]];
    expect(res.lossFirst).toBeCloseTo(s0 + 1 * n0 + 1 * a0, 4); // defaults: sftWeight 1, judgeAnchor 1
    model.dispose();
  });

  it("freezeEncoder (the default) trains only the language part", () => {
    const model = TinyVlm.init(5, { ...TINY, vocab: cfgVocab });
    const pairs: SimpoPair[] = [0, 1, 2, 3].map((i) => {
      const x = trainItem(12, i);
      return { image: renderScene(x.scene), question: x.question, chosen: x.answer, rejected: "it is the" };
    });
    const snap = () => Object.fromEntries(Object.entries(model.params).map(([n, v]) => [n, Array.from(v.dataSync())]));
    const before = snap();
    trainSimpo(model, pairs, { epochs: 1, batchSize: 4, learningRate: 1e-2 });
    const mid = snap();
    for (const n of ENCODER_PARAMS) expect(mid[n]).toEqual(before[n]);
    expect(mid.outW).not.toEqual(before.outW);
    trainSimpo(model, pairs, { epochs: 1, batchSize: 4, learningRate: 1e-2, freezeEncoder: false });
    expect(snap().p1).not.toEqual(mid.p1);
    model.dispose();
  });

  it("the judge anchor keeps the member's judge outputs close to where they were while answers train", () => {
    const pairs: SimpoPair[] = Array.from({ length: 16 }, (_, i) => {
      const x = trainItem(13, i);
      return { image: renderScene(x.scene), question: x.question, chosen: x.answer, rejected: "it is the" };
    });
    const items = pairs.flatMap((p) => [
      { image: p.image, question: p.question, answer: p.chosen },
      { image: p.image, question: p.question, answer: p.rejected },
    ]);
    // KL(before || after) of the score-token distributions, per item and criterion
    const drift = (judgeAnchor: number) => {
      const model = TinyVlm.init(6, { ...TINY, vocab: cfgVocab });
      const before = model.judgeDistributions(items).flat(2);
      const res = trainSimpo(model, pairs, { epochs: 6, batchSize: 8, learningRate: 1e-2, judgeAnchor });
      const after = model.judgeDistributions(items).flat(2);
      model.dispose();
      return { res, kl: after.reduce((a, lp, i) => a + Math.exp(before[i]!) * (before[i]! - lp), 0) / (items.length * 5) };
    };
    const free = drift(0);
    const anchored = drift(1);
    // both learn the answers; the anchored one keeps its judging much closer to where it was
    expect(free.res.marginAfter).toBeGreaterThan(free.res.marginBefore + 1);
    expect(anchored.res.marginAfter).toBeGreaterThan(anchored.res.marginBefore + 1);
    expect(free.kl).toBeGreaterThan(0.05);
    expect(anchored.kl).toBeLessThan(free.kl * 0.5);
  });
});
