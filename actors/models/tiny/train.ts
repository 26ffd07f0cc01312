/** Training loops for the tiny model: cross-entropy (pretraining) and SimPO (PoP). */
import { CURVE_POINTS, thin, type RgbImage, type SimpoOptions, type TrainResult, type TrainStep } from "../contract.ts";
import { CRITERIA_SCORES, classifyAnswer, drawCategory, synthCandidate } from "./criteria.ts";
import { TinyVlm, imagesTensor } from "./model.ts";
import { hashSeed, makeRng } from "../../random/rng.ts";
import { tf } from "./tf.ts";
import { renderScene, type WorldItem } from "./world.ts";

/**
 * SimPO hyper-parameter defaults for the tiny model (measured with simulate-pop.ts on the panel
 * shipped before 2026-11-28, whose ocrdumb read 0.39; 3 iterations of 1500 prompts, k 4, judge
 * temperature 0.25):
 *
 * - beta 2.0, gamma 1.0 (gamma/beta = 0.5, the SimPO authors' suggested start).
 * - learning rate 5e-4, epochs 3, batch 32 (Adam, fresh per call), language part only
 *   (`freezeEncoder`: the shared vision tower stays fixed).
 * - sftWeight 1: an NLL term on the chosen answers (length-averaged), as in CPO-SimPO (TRL's
 *   cpo_alpha). Pure SimPO (0) lifted countless and lostspace but let ocrdumb's text reading fall
 *   (0.39 -> 0.16, panel +0.041): the margin grew while the chosen answers' own likelihood fell.
 *   With 1: panel +0.074 and every member up (ocrdumb ocr 0.39 -> 0.67); 0.3: panel +0.044.
 * - judgeAnchor 1: weight of a self-distillation term that keeps the member's judge outputs on the
 *   pairs' answers where they were before the update (learning without forgetting; no labels).
 *   Training on answers alone let the judges drift from one iteration to the next (a competent
 *   judge scored wrong answers higher, a blind one scored everything lower), so later iterations
 *   kept fewer and noisier pairs. 0 turns it off.
 * - optimizer "adam", adamEpsilon 1e-7 (tfjs default).
 * The 7B settings (lr 3e-7..1e-6) would not move a 250k-parameter model at all.
 */
export const SIMPO_DEFAULTS: TinySimpoOptions = {
  beta: 2.0,
  gamma: 1.0,
  learningRate: 5e-4,
  epochs: 3,
  batchSize: 32,
  seed: 0,
  sftWeight: 1,
  optimizer: "adam",
  adamEpsilon: 1e-7,
  freezeEncoder: true,
  judgeAnchor: 1,
};

/** Build the optimizer a SimPO run uses (callers may keep it across runs to keep Adam's moments). */
export function simpoOptimizer(o: Pick<TinySimpoOptions, "optimizer" | "learningRate" | "adamEpsilon">): tf.Optimizer {
  return o.optimizer === "sgd" ? tf.train.sgd(o.learningRate) : tf.train.adam(o.learningRate, 0.9, 0.999, o.adamEpsilon);
}

/** Tiny-model SimPO options: every one of the contract's SimpoOptions (none absent), plus the optimiser's. */
export type TinySimpoOptions = Required<SimpoOptions> & { optimizer: "adam" | "sgd"; adamEpsilon: number; freezeEncoder: boolean };

export interface SimpoPair {
  image: RgbImage;
  question: string;
  chosen: string;
  rejected: string;
}

/** Mean length-averaged log-prob margin (chosen - rejected) and, when asked, the judge's distributions on both answers. */
function pairStats(model: TinyVlm, pairs: SimpoPair[], withJudge: boolean): { margin: number; judge?: { chosen: number[][][]; rejected: number[][][] } } {
  if (!pairs.length) return { margin: 0 };
  const items = (side: "chosen" | "rejected") => pairs.map((p) => ({ image: p.image, question: p.question, answer: p[side] }));
  const c = withJudge ? model.answerAndJudge(items("chosen")) : { avgLogProb: model.answerLogProbs(items("chosen")), judge: [] };
  const r = withJudge ? model.answerAndJudge(items("rejected")) : { avgLogProb: model.answerLogProbs(items("rejected")), judge: [] };
  const margin = c.avgLogProb.reduce((a, x, i) => a + x - r.avgLogProb[i]!, 0) / pairs.length;
  return withJudge ? { margin, judge: { chosen: c.judge, rejected: r.judge } } : { margin };
}

/**
 * SimPO over the pairs (shuffled per epoch by the seed), continuing from the current weights.
 * With `freezeEncoder` (default) only the language part learns (the shared vision tower stays).
 * A given `optimizer` is used (and not disposed) instead of a fresh one.
 */
export function trainSimpo(
  model: TinyVlm,
  pairs: SimpoPair[],
  opts: Partial<typeof SIMPO_DEFAULTS> = {},
  optimizer?: tf.Optimizer,
  onStep?: (done: number, total: number, step: TrainStep) => void,
): TrainResult {
  const o = { ...SIMPO_DEFAULTS, ...opts };
  const t0 = performance.now();
  // the margin before, and the judge's own score distributions on the pairs' answers before this
  // update (the anchor's targets), from one pass
  const before = pairStats(model, pairs, o.judgeAnchor > 0);
  const anchor = before.judge;
  const opt = optimizer ?? simpoOptimizer(o);
  const vars = model.trainableVariables(o.freezeEncoder);
  const rng = makeRng(hashSeed("simpo", o.seed));
  let steps = 0,
    lossFirst = NaN,
    lossLast = NaN;
  // Unweighted terms of the loss at the first step and the last (what moved, for the logs).
  const names = anchor ? ["simpo", "nll", "anchor"] : ["simpo", "nll"];
  let termsFirst: number[] = [];
  let termsLast: number[] = [];
  const curve: [number, number, number][] = [];
  const total = pairs.length ? o.epochs * Math.ceil(pairs.length / o.batchSize) : 0;
  for (let e = 0; e < o.epochs && pairs.length; e++) {
    const order = rng.shuffle(pairs.map((_, i) => i));
    for (let s = 0; s < order.length; s += o.batchSize) {
      const idx = order.slice(s, s + o.batchSize);
      const b = idx.map((i) => pairs[i]!);
      let parts: tf.Tensor[] = [];
      const loss = tf.tidy(() => {
        const images = imagesTensor(b.map((p) => p.image));
        const seqs = TinyVlm.judgeBatch([
          ...b.map((p) => ({ question: p.question, answer: p.chosen })),
          ...b.map((p) => ({ question: p.question, answer: p.rejected })),
        ]);
        const targets =
          anchor && tf.tensor2d([...idx.map((i) => anchor.chosen[i]!.flat()), ...idx.map((i) => anchor.rejected[i]!.flat())].flat(), [b.length * 10, 5]);
        const l = opt.minimize(
          () => {
            const s = model.simpoStep(images, seqs, o.beta, o.gamma, o.sftWeight, targets);
            // Kept past the tape's clean-up to be read below; disposed right after.
            parts = [s.simpo, s.nll, ...(s.anchor ? [s.anchor] : []), tf.mean(s.margin)].map((t) => tf.keep(t.clone()));
            return s.anchor ? (tf.add(s.loss, tf.mul(o.judgeAnchor, s.anchor)) as tf.Scalar) : s.loss;
          },
          true,
          vars,
        )!;
        return l.dataSync()[0]!;
      });
      const values = parts.map((t) => t.dataSync()[0]!);
      tf.dispose(parts);
      const margin = values.pop()!;
      if (steps === 0) {
        lossFirst = loss;
        termsFirst = values;
      }
      lossLast = loss;
      termsLast = values;
      steps++;
      curve.push([steps, loss, margin]);
      onStep?.(steps, total, { loss, margin, terms: Object.fromEntries(names.map((n, i) => [n, values[i]!])) });
    }
  }
  if (!optimizer) opt.dispose();
  const terms = steps ? Object.fromEntries(names.map((n, i) => [n, [termsFirst[i]!, termsLast[i]!] as [number, number]])) : undefined;
  return {
    steps,
    pairs: pairs.length,
    lossFirst,
    lossLast,
    ...(terms ? { terms } : {}),
    marginBefore: before.margin,
    marginAfter: pairStats(model, pairs, false).margin,
    ms: performance.now() - t0,
    ...(curve.length ? { curve: thin(curve, CURVE_POINTS) } : {}),
  };
}

/** A judge training example: a candidate answer with its five ground-truth labels (1..5). */
export interface JudgeExample {
  image: RgbImage;
  question: string;
  answer: string;
  labels: number[];
}

/** Synthesise a judge example for a world item (category drawn from the candidate mix). */
export function judgeExample(item: WorldItem, seed: number, image = renderScene(item.scene)): JudgeExample {
  const rng = makeRng(hashSeed("judge-ex", seed, item.id));
  const answer = synthCandidate(item.family, item.answer, drawCategory(rng), rng);
  const labels = [...CRITERIA_SCORES[classifyAnswer(item.family, item.answer, answer)]];
  return { image, question: item.question, answer, labels };
}

/** One cross-entropy step on answer items and judge examples; returns the loss. */
export function ceStep(
  model: TinyVlm,
  opt: tf.Optimizer,
  answers: { image: RgbImage; question: string; answer: string }[],
  judges: JudgeExample[],
  judgeWeight = 1,
  vars: tf.Variable[] = model.variables,
): number {
  return tf.tidy(() => {
    const ans = answers.length ? { images: imagesTensor(answers.map((a) => a.image)), ...TinyVlm.answerBatch(answers) } : undefined;
    const judge = judges.length
      ? {
          images: imagesTensor(judges.map((j) => j.image)),
          batch: TinyVlm.judgeBatch(judges),
          labels: tf.tensor1d(
            judges.flatMap((j) => j.labels.map((l) => l - 1)),
            "int32",
          ),
        }
      : undefined;
    const l = opt.minimize(() => model.ceLoss(ans, judge, judgeWeight), true, vars)!;
    return l.dataSync()[0]!;
  });
}
