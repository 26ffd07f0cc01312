/**
 * Pretraining recipe for the shipped panel, in two stages (as LLaVA-1.5 panel members share one
 * CLIP vision tower and differ in their language models and data):
 *
 * 1. The shared vision tower: one full model is trained by cross-entropy on answers of ALL six
 *    families (seed {@link ENCODER_SEED}); only its patchify layers ({@link ENCODER_PARAMS}) are kept.
 *    So every member's image features carry glyph, count and layout information.
 * 2. Each member: the vision tower from stage 1 (frozen), and a language part (projection,
 *    embeddings, GRU, attention, output head) initialised from the member's seed and trained on
 *    its own data mix (answers + synthetic judge examples, see criteria.ts). A member's two gap
 *    families keep only `keep` of their answer AND judge examples (the rest are dropped).
 *    Each family is missing from exactly one member, so the other two can verify it.
 */
import { FAMILIES, type Family, trainItem, renderScene } from "./world.ts";
import { TinyVlm, DEFAULT_CONFIG, parseWeights, type TinyConfig } from "./model.ts";
import { ceStep, judgeExample } from "./train.ts";
import { evaluateModel } from "./evaluate.ts";
import { hashSeed, makeRng } from "../../random/rng.ts";
import { tf } from "./tf.ts";

export interface MemberSpec {
  name: string;
  /** Families trained with only `keep` of their data (answers and judge examples). */
  gaps: Family[];
  keep: number;
  /**
   * Share of answer examples kept for these families, in both phases, instead of the gap shares
   * (judge examples still follow the gap shares). The paper's OCR-dumb member was pretrained
   * without text-reading data; `ocrdumb` keeps 4% of its text-reading answers and 1% of its
   * is-there-text answers, which leaves it far below its peers on both (0.07, 0.38) but able to
   * learn them from its peers' answers, where a member that never saw one learned too slowly (docs/results/tiny-model-experiments.md,
   * "The OCR-dumb gap"). Families learnt from very little data (where an object is) are kept
   * this way too, or the refinement phase closes the gap; `countless` keeps 1% of its counting
   * answers, so its counting starts near chance and PoP lifts it clearly rather than by a few
   * points that the later iterations can take back.
   */
  answerKeep?: Partial<Record<Family, number>>;
  /** Seed of the language part's init and of the data stream. */
  seed: number;
  /**
   * The member's language part when it differs from the default (the vision tower's sizes c1/c2
   * are shared and cannot change): panel members differ in backbone size and design as the
   * paper's mix three language models.
   */
  decoder?: Partial<Pick<TinyConfig, "hidden" | "embed" | "att" | "posQuery" | "attSkip">>;
  /**
   * Add the second look after pretraining ({@link TinyConfig.secondLook}: zero query and skip, so
   * the member starts exactly where its pretraining left it). Its gap families need an attention
   * that finds an object by the asked word, which its first attention never learnt from the gap
   * shares; the second look, starting uniform, learns it from its peers' pairs.
   */
  secondLook?: boolean;
}

/** Seed of the shared vision tower (stage 1). */
export const ENCODER_SEED = 7;

/** The shipped panel: each family is a gap of exactly one member. */
export const PANEL: MemberSpec[] = [
  {
    name: "ocrdumb",
    gaps: ["ocr", "existence"],
    keep: 0.05,
    answerKeep: { ocr: 0.04, existence: 0.01 },
    seed: 101,
    decoder: { posQuery: true, attSkip: true },
  },
  {
    name: "countless",
    gaps: ["count", "colour"],
    keep: 0.05,
    answerKeep: { count: 0.01 },
    seed: 202,
    decoder: { hidden: 96, embed: 24, att: 24, posQuery: true, attSkip: true },
    secondLook: true,
  },
  { name: "lostspace", gaps: ["spatial", "shape"], keep: 0.05, answerKeep: { spatial: 0.05 }, seed: 303, secondLook: true },
];

export interface PretrainOptions {
  steps: number;
  /**
   * Refinement phase after `steps`: this many more steps (fresh Adam, own data stream) in which
   * the gap families keep `refineKeep` of their data, so gaps end partial rather than total.
   */
  refineSteps: number;
  refineKeep: number;
  /** Answer examples per step. */
  batch: number;
  /** Judge examples (candidates, five labels each) per step. */
  judgeBatch: number;
  learningRate: number;
  config: TinyConfig;
  /** Evaluate every this many steps (0 = never) and log. */
  evalEvery: number;
  log?: (msg: string) => void;
  /** Called after every step with the steps done of the whole run and the smoothed loss; without it, steps are logged every 100. */
  onStep?: (done: number, total: number, loss: number) => void;
}

/** Stage 2 (members, frozen vision tower). */
export const PRETRAIN_DEFAULTS: PretrainOptions = {
  steps: 900,
  refineSteps: 300,
  refineKeep: 0.25,
  batch: 32,
  judgeBatch: 40,
  learningRate: 3e-3,
  config: DEFAULT_CONFIG,
  evalEvery: 0,
};

/** Stage 1 (shared vision tower: full model, answers of all families, no judge examples). */
export const ENCODER_DEFAULTS: PretrainOptions = { ...PRETRAIN_DEFAULTS, steps: 1200, judgeBatch: 0, refineSteps: 0 };

function logEval(o: PretrainOptions, name: string, model: TinyVlm, step: number): void {
  if (o.log && o.evalEvery && step % o.evalEvery === 0) {
    const ev = evaluateModel(model);
    o.log(`[${name}] eval@${step} ${FAMILIES.map((f) => `${f} ${ev.suites[f]!.toFixed(2)}`).join(" ")} avg ${ev.average.toFixed(3)}`);
  }
}

/** Stage 1: train a full model on all families; its patchify layers become the shared vision tower. Deterministic. */
export function pretrainEncoder(options: Partial<PretrainOptions> = {}, seed = ENCODER_SEED): TinyVlm {
  const o = { ...ENCODER_DEFAULTS, ...options };
  const model = TinyVlm.init(hashSeed("encoder", seed), o.config);
  const opt = tf.train.adam(o.learningRate);
  let idx = 0;
  const t0 = performance.now();
  let avg = 0;
  for (let step = 1; step <= o.steps; step++) {
    const ans = Array.from({ length: o.batch }, () => {
      const it = trainItem(hashSeed("encoder", seed), idx++);
      return { image: renderScene(it.scene), question: it.question, answer: it.answer };
    });
    const loss = ceStep(model, opt, ans, []);
    avg = step === 1 ? loss : 0.98 * avg + 0.02 * loss;
    if (o.onStep) o.onStep(step, o.steps, avg);
    else if (o.log && (step % 100 === 0 || step === o.steps))
      o.log(`[encoder] step ${step} loss ${avg.toFixed(3)} ${((performance.now() - t0) / 1000).toFixed(0)}s`);
    logEval(o, "encoder", model, step);
  }
  opt.dispose();
  return model;
}

/**
 * Stage 2: one member from its seed on top of a vision tower (`encoder`, whose patchify layers are
 * copied and frozen; without one the whole network trains from the member's seed): `steps` with
 * the gap families at `spec.keep`, then `refineSteps` (fresh Adam, own data stream) with them at
 * `refineKeep`. `resume` = a model already through the first phase (same seed and steps): only the
 * refinement runs on a copy of it, with the same result as a full run. Deterministic.
 */
export function pretrainMember(spec: MemberSpec, options: Partial<PretrainOptions> = {}, encoder?: TinyVlm, resume?: TinyVlm): TinyVlm {
  const o = { ...PRETRAIN_DEFAULTS, ...options };
  const model = TinyVlm.init(spec.seed, { ...o.config, ...spec.decoder });
  if (encoder) model.copyEncoderFrom(encoder);
  const vars = model.trainableVariables(!!encoder);
  if (resume) model.assign(parseWeights(resume.serialize()).data);
  else memberPhase(model, vars, spec, o, o.steps, spec.keep, "", 0);
  if (o.refineSteps > 0) memberPhase(model, vars, spec, o, o.refineSteps, o.refineKeep, "refine", o.steps);
  if (!spec.secondLook) return model;
  const grown = TinyVlm.withSecondLook(model, spec.seed);
  model.dispose();
  return grown;
}

function memberPhase(
  model: TinyVlm,
  vars: ReturnType<TinyVlm["trainableVariables"]>,
  spec: MemberSpec,
  o: PretrainOptions,
  steps: number,
  keep: number,
  phase: string,
  stepOffset: number,
): void {
  const opt = tf.train.adam(o.learningRate);
  const dataSeed = phase ? hashSeed(phase, spec.seed) : spec.seed;
  const rng = makeRng(hashSeed(`pretrain-keep${phase}`, spec.seed));
  let idx = 0;
  const next = (answer: boolean) => {
    for (;;) {
      const it = trainItem(dataSeed, idx++);
      const own = answer ? spec.answerKeep?.[it.family] : undefined;
      if (own !== undefined) {
        if (rng.next() < own) return it;
        continue;
      }
      if (!spec.gaps.includes(it.family) || rng.next() < keep) return it;
    }
  };
  const t0 = performance.now();
  let avg = 0;
  for (let s = 1; s <= steps; s++) {
    const step = s + stepOffset;
    const ans = Array.from({ length: o.batch }, () => {
      const it = next(true);
      return { image: renderScene(it.scene), question: it.question, answer: it.answer };
    });
    const judges = Array.from({ length: o.judgeBatch }, () => judgeExample(next(false), spec.seed));
    const loss = ceStep(model, opt, ans, judges, 1, vars);
    avg = s === 1 ? loss : 0.98 * avg + 0.02 * loss;
    if (o.onStep) o.onStep(step, o.steps + o.refineSteps, avg);
    else if (o.log && (step % 100 === 0 || s === steps))
      o.log(`[${spec.name}] step ${step} loss ${avg.toFixed(3)} ${((performance.now() - t0) / 1000).toFixed(0)}s`);
    logEval(o, spec.name, model, step);
  }
  opt.dispose();
}
