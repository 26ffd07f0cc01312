/**
 * Pretraining recipe for the shipped panel: three members of similar overall strength with
 * different gaps (as the paper's panel differs), each trained by cross-entropy on labelled world
 * items (answers) and on synthetic judge examples (see criteria.ts).
 *
 * A member's gap family keeps only `keep` of its answer AND judge examples (the rest are dropped
 * from the stream, not replaced): "ocrdumb" keeps 8% of its text-reading data (92% removed; it
 * stays near chance, ~0.04, on text reading), "countless" 5% of counting, "lostspace" 5% of spatial.
 * Training is deliberately short (members start well below saturation) so PoP has headroom.
 */
import { FAMILIES, type Family, trainItem, renderScene } from "./world.ts";
import { TinyVlm, DEFAULT_CONFIG, type TinyConfig } from "./model.ts";
import { ceStep, judgeExample } from "./train.ts";
import { evaluateModel } from "./evaluate.ts";
import { hashSeed, makeRng } from "./rng.ts";
import { tf } from "./tf.ts";

export interface MemberSpec {
  name: string;
  /** Family trained with only `keep` of its data (answers and judge examples). */
  gap: Family;
  keep: number;
  /** Seed of init and data stream. */
  seed: number;
}

/** The shipped panel. */
export const PANEL: MemberSpec[] = [
  { name: "ocrdumb", gap: "ocr", keep: 0.08, seed: 101 },
  { name: "countless", gap: "count", keep: 0.05, seed: 202 },
  { name: "lostspace", gap: "spatial", keep: 0.05, seed: 303 },
];

export interface PretrainOptions {
  steps: number;
  /** Answer examples per step. */
  batch: number;
  /** Judge examples (candidates, five labels each) per step. */
  judgeBatch: number;
  learningRate: number;
  config: TinyConfig;
  /** Evaluate every this many steps (0 = never) and log. */
  evalEvery: number;
  log?: (msg: string) => void;
}

export const PRETRAIN_DEFAULTS: PretrainOptions = {
  steps: 1400,
  batch: 32,
  judgeBatch: 24,
  learningRate: 3e-3,
  config: DEFAULT_CONFIG,
  evalEvery: 0,
};

/** Pretrain one member from its seed; deterministic. */
export function pretrainMember(spec: MemberSpec, options: Partial<PretrainOptions> = {}): TinyVlm {
  const o = { ...PRETRAIN_DEFAULTS, ...options };
  const model = TinyVlm.init(spec.seed, o.config);
  const opt = tf.train.adam(o.learningRate);
  const rng = makeRng(hashSeed("pretrain-keep", spec.seed));
  let idx = 0;
  const next = () => {
    for (;;) {
      const it = trainItem(spec.seed, idx++);
      if (it.family !== spec.gap || rng.next() < spec.keep) return it;
    }
  };
  const t0 = performance.now();
  let avg = 0;
  for (let step = 1; step <= o.steps; step++) {
    const ans = Array.from({ length: o.batch }, () => {
      const it = next();
      return { image: renderScene(it.scene), question: it.question, answer: it.answer };
    });
    const judges = Array.from({ length: o.judgeBatch }, () => judgeExample(next(), spec.seed));
    const loss = ceStep(model, opt, ans, judges);
    avg = step === 1 ? loss : 0.98 * avg + 0.02 * loss;
    if (o.log && (step % 50 === 0 || step === o.steps)) o.log(`[${spec.name}] step ${step} loss ${avg.toFixed(3)} ${((performance.now() - t0) / 1000).toFixed(0)}s`);
    if (o.log && o.evalEvery && step % o.evalEvery === 0) {
      const ev = evaluateModel(model);
      o.log(`[${spec.name}] eval ${FAMILIES.map((f) => `${f} ${ev.suites[f]!.toFixed(2)}`).join(" ")} avg ${ev.average.toFixed(3)}`);
    }
  }
  opt.dispose();
  return model;
}
