/**
 * TinyVlm: a small real vision-language model on tfjs (wasm backend).
 *
 * - Image encoder: two "patchify" layers (4x4 then 2x2 patches, reshape/transpose/matMul, ReLU)
 *   32x32x3 -> 8x8xC1 -> 4x4xC2, flattened and projected to the hidden size (tanh).
 * - Text decoder: a GRU over word tokens (one-hot x matMul embedding), initial state = image
 *   vector, and the image vector also feeds every gate at every step (a context term); each step
 *   attends over the 16 image cells. Optional per member: a per-position attention query and a
 *   skip from the attended cell to the state (`posQuery`, `attSkip` in {@link TinyConfig}).
 * - One network does everything: answering (prompt -> answer tokens), judging (judge prefix ->
 *   criterion token -> distribution over the five score tokens) and SimPO.
 *
 * Pitfalls handled (DESIGN §3): no conv2d, no gather in the gradient path, softplus(-x) instead
 * of logSigmoid, every step in tf.tidy, weights saved by hand.
 */
import { createHash } from "node:crypto";
import type { RgbImage } from "../contract.ts";
import { makeRng, hashSeed } from "../../random/rng.ts";
import { tf } from "./tf.ts";
import {
  ANSWER_LEN,
  BANNED_IN_ANSWERS,
  CRIT0,
  EOS,
  JUDGE_LEN,
  PROMPT_LEN,
  SCORE0,
  VOCAB,
  promptTokens,
  answerSequence,
  judgeSequence,
  detokenize,
} from "./vocab.ts";
import { CRITERIA } from "../../../protocol/mod.ts";
import { expectedScore } from "../likert.ts";
import { FORMAT_VERSION, MAGIC } from "./format.ts";
import { pickToken, stepLogprobs, type StepSampling } from "./sampling.ts";

/** One sampled answer: its token ids, whether the token limit cut it, and with log-probs asked for, each step's (./sampling.ts). */
export interface SampledAnswer {
  ids: number[];
  cut: boolean;
  steps?: { logprob: number; top: [number, number][] }[];
}

export interface TinyConfig {
  /** Hidden size of the GRU and image vector. */
  hidden: number;
  /** Token embedding size. */
  embed: number;
  /** Channels of the two patchify layers. */
  c1: number;
  c2: number;
  /** Attention key size. */
  att: number;
  /**
   * A learned attention-query offset per sequence position (`attP`), added to the query the
   * state makes: where the decoder looks can then depend on how far along the answer it is, so
   * stepping along the text cells need not be counted by the GRU. Absent in older files (false).
   */
  posQuery?: boolean;
  /**
   * The attended cell's features are also added to the new state through `attS` (zero at init):
   * a straight path from what the decoder looks at to the token it writes next, so reading a
   * glyph is one linear map rather than something the GRU's gates must learn to carry. Absent
   * in older files (false).
   */
  attSkip?: boolean;
  /**
   * A second attention read whose query (`lookQ`) and skip to the state (`lookS`) start at zero,
   * over keys of its own (`lookK`): added to a trained member, it changes nothing until trained.
   * Its attention starts uniform, so what it should look at can be learnt from few examples,
   * where the first attention of a member that never learnt to find an object by the asked word
   * sits saturated on an empty cell and barely moves (docs/results/tiny-model-experiments.md,
   * "The colour and shape gaps"). Absent in older files (false).
   */
  secondLook?: boolean;
  vocab: string[];
}

export const DEFAULT_CONFIG: TinyConfig = { hidden: 128, embed: 32, c1: 32, c2: 48, att: 32, vocab: VOCAB };

type Params = Record<string, tf.Variable>;

/**
 * The vision tower (the two patchify layers), shared by every panel member as LLaVA-1.5 members
 * share one CLIP encoder; the rest (image projection, cell keys and positions, embeddings, GRU,
 * attention, output head) is the member's own "language part".
 */
export const ENCODER_PARAMS: readonly string[] = ["p1", "p1b", "p2", "p2b"];
let variableCounter = 0;

/** Parameter shapes, in a fixed order (the file order). */
export function paramShapes(c: TinyConfig): [string, number[], number][] {
  const V = c.vocab.length,
    H = c.hidden,
    E = c.embed;
  // [name, shape, fan-in for init; 0 = zeros]
  const s: [string, number[], number][] = [
    ["p1", [48, c.c1], 48],
    ["p1b", [c.c1], 0],
    ["p2", [4 * c.c1, c.c2], 4 * c.c1],
    ["p2b", [c.c2], 0],
    ["imgW", [16 * c.c2, H], 16 * c.c2],
    ["imgB", [H], 0],
    ["emb", [V, E], E],
    ["outW", [H, V], H],
    ["outB", [V], 0],
  ];
  for (const g of ["z", "r", "n"]) {
    s.push([`W${g}`, [E, H], E], [`U${g}`, [H, H], H], [`C${g}`, [H, H], H], [`A${g}`, [c.c2, H], c.c2], [`b${g}`, [H], 0]);
  }
  // attention over the 4x4 grid of cell features: position embedding, query and key maps
  s.push(["pos", [16, c.c2], c.c2], ["attQ", [H, c.att], H], ["attK", [c.c2, c.att], c.c2]);
  if (c.posQuery) s.push(["attP", [POSITIONS, c.att], 0]);
  if (c.attSkip) s.push(["attS", [c.c2, H], 0]);
  if (c.secondLook) s.push(["lookQ", [H, c.att], 0], ["lookK", [c.c2, c.att], c.c2], ["lookS", [c.c2, H], 0]);
  return s;
}

/** Sequence positions a run can reach: the judge layout, then the criterion token (at {@link JUDGE_LEN}). */
const POSITIONS = JUDGE_LEN + 1;

export interface Batch {
  images: tf.Tensor4D;
}

/** Images to a float tensor [N,32,32,3] in [-0.5, 0.5]. */
export function imagesTensor(images: RgbImage[]): tf.Tensor4D {
  const n = images.length;
  const buf = new Float32Array(n * 32 * 32 * 3);
  images.forEach((im, i) => {
    if (im.width !== 32 || im.height !== 32) throw new Error(`tiny model takes 32x32 images, got ${im.width}x${im.height}`);
    for (let j = 0; j < im.data.length; j++) buf[i * 3072 + j] = im.data[j]! / 255 - 0.5;
  });
  return tf.tensor4d(buf, [n, 32, 32, 3]);
}

export class TinyVlm {
  readonly config: TinyConfig;
  readonly params: Params;
  readonly V: number;

  private constructor(config: TinyConfig, params: Params) {
    this.config = config;
    this.params = params;
    this.V = config.vocab.length;
  }

  /** Fresh weights from a seed (He-normal from our own PRNG, so init is engine-independent). */
  static init(seed: number, config: TinyConfig = DEFAULT_CONFIG): TinyVlm {
    const rng = makeRng(hashSeed("tiny-init", seed));
    const params: Params = {};
    for (const [name, shape, fanIn] of paramShapes(config)) {
      const size = shape.reduce((a, b) => a * b, 1);
      const buf = new Float32Array(size);
      if (fanIn) {
        const std = Math.sqrt((name.startsWith("U") || name.startsWith("C") ? 1 : 2) / fanIn);
        for (let i = 0; i < size; i++) buf[i] = rng.normal() * std;
      }
      params[name] = tf.variable(tf.tensor(buf, shape), true, `tiny/${name}/${++variableCounter}`);
    }
    return new TinyVlm(config, params);
  }

  /**
   * A copy of `base` with the second look added ({@link TinyConfig.secondLook}): the new keys are
   * drawn from `seed`, its query and skip are zero, so the copy answers and judges as `base` does.
   */
  static withSecondLook(base: TinyVlm, seed: number): TinyVlm {
    const m = TinyVlm.init(seed, { ...base.config, secondLook: true });
    for (const [n] of paramShapes(base.config)) m.params[n]!.assign(base.params[n]!);
    return m;
  }

  get variables(): tf.Variable[] {
    return paramShapes(this.config).map(([n]) => this.params[n]!);
  }

  /**
   * The variables a training step updates: all of them, or only the language part (everything
   * but the shared vision tower {@link ENCODER_PARAMS}) when `freezeEncoder`.
   */
  trainableVariables(freezeEncoder = false): tf.Variable[] {
    return paramShapes(this.config)
      .filter(([n]) => !freezeEncoder || !ENCODER_PARAMS.includes(n))
      .map(([n]) => this.params[n]!);
  }

  /** Copy the vision tower's weights from another model of the same config. */
  copyEncoderFrom(other: TinyVlm): void {
    for (const n of ENCODER_PARAMS) this.params[n]!.assign(other.params[n]!);
  }

  get parameterCount(): number {
    return this.variables.reduce((a, v) => a + v.size, 0);
  }

  // ---- forward pieces (call inside tf.tidy) ----

  private patch(x: tf.Tensor4D, k: number, w: tf.Tensor, b: tf.Tensor): tf.Tensor4D {
    const [n, h, wd, c] = x.shape;
    const cols = x
      .reshape([n, h / k, k, wd / k, k, c])
      .transpose([0, 1, 3, 2, 4, 5])
      .reshape([-1, k * k * c]);
    return tf.relu(tf.add(tf.matMul(cols, w as tf.Tensor2D), b)).reshape([n, h / k, wd / k, w.shape[1]!]) as tf.Tensor4D;
  }

  /** Image encoding: a vector [N,H] and 16 cell features [N,16,C2] (with position embedding) plus their keys. */
  encode(images: tf.Tensor4D): Enc {
    const p = this.params;
    let x = this.patch(images, 4, p.p1!, p.p1b!);
    x = this.patch(x, 2, p.p2!, p.p2b!);
    const n = x.shape[0];
    const vec = tf.tanh(tf.add(tf.matMul(x.reshape([n, -1]) as tf.Tensor2D, p.imgW as tf.Tensor2D), p.imgB!));
    const cells = tf.add(x.reshape([n, 16, this.config.c2]), p.pos!) as tf.Tensor3D;
    const keyed = (w: tf.Variable) => tf.matMul(cells.reshape([n * 16, -1]) as tf.Tensor2D, w as tf.Tensor2D).reshape([n, 16, this.config.att]) as tf.Tensor3D;
    return { vec: vec as tf.Tensor2D, cells, keys: keyed(p.attK!), ...(p.lookK ? { lookKeys: keyed(p.lookK) } : {}) };
  }

  private embedIds(ids: tf.Tensor1D): tf.Tensor2D {
    return tf.matMul(tf.oneHot(ids, this.V).toFloat(), this.params.emb as tf.Tensor2D);
  }

  /** Per-gate image context [N,H] x3. */
  private context(img: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
    // (img is the image vector)
    const p = this.params;
    return [
      tf.add(tf.matMul(img, p.Cz as tf.Tensor2D), p.bz!),
      tf.add(tf.matMul(img, p.Cr as tf.Tensor2D), p.br!),
      tf.add(tf.matMul(img, p.Cn as tf.Tensor2D), p.bn!),
    ];
  }

  private gru(xz: tf.Tensor2D, xr: tf.Tensor2D, xn: tf.Tensor2D, h: tf.Tensor2D): tf.Tensor2D {
    const p = this.params;
    const z = tf.sigmoid(tf.add(xz, tf.matMul(h, p.Uz as tf.Tensor2D)));
    const r = tf.sigmoid(tf.add(xr, tf.matMul(h, p.Ur as tf.Tensor2D)));
    const n = tf.tanh(tf.add(xn, tf.mul(r, tf.matMul(h, p.Un as tf.Tensor2D))));
    return tf.add(n, tf.mul(z, tf.sub(h, n)));
  }

  /**
   * Run the GRU over tokens [N,T] (int32) from image vectors; returns the T hidden states.
   * `at` = the sequence position of the first token (a continued run starts where the last ended).
   */
  run(enc: Enc, tokens: tf.Tensor2D, h0?: tf.Tensor2D, at = 0): tf.Tensor2D[] {
    const [N, T] = tokens.shape;
    const p = this.params;
    const img = enc.vec;
    const [cz, cr, cn] = this.context(img);
    const x = this.embedIds(tokens.transpose().reshape([-1]) as tf.Tensor1D); // [T*N, E], time-major
    const E = this.config.embed;
    let h = h0 ?? img;
    const hs: tf.Tensor2D[] = [];
    for (let t = 0; t < T; t++) {
      // slice (not unstack: its gradient fails when an output gets no gradient)
      const xt = T === 1 ? x : (x.slice([t * N, 0], [N, E]) as tf.Tensor2D);
      // attention of the previous state over the image cells
      const hPrev = h;
      let qt: tf.Tensor2D = tf.matMul(h, p.attQ as tf.Tensor2D);
      if (p.attP) qt = tf.add(qt, p.attP.slice([at + t, 0], [1, this.config.att]));
      const q = qt.expandDims(1); // [N,1,A]
      const att = tf.softmax(tf.div(tf.sum(tf.mul(enc.keys, q), 2), Math.sqrt(this.config.att))); // [N,16]
      const ctx = tf.sum(tf.mul(enc.cells, att.expandDims(2)), 1) as tf.Tensor2D; // [N,C2]
      const xz = tf.add(tf.add(tf.matMul(xt, p.Wz as tf.Tensor2D), cz), tf.matMul(ctx, p.Az as tf.Tensor2D));
      const xr = tf.add(tf.add(tf.matMul(xt, p.Wr as tf.Tensor2D), cr), tf.matMul(ctx, p.Ar as tf.Tensor2D));
      const xn = tf.add(tf.add(tf.matMul(xt, p.Wn as tf.Tensor2D), cn), tf.matMul(ctx, p.An as tf.Tensor2D));
      h = this.gru(xz as tf.Tensor2D, xr as tf.Tensor2D, xn as tf.Tensor2D, h);
      if (p.attS) h = tf.add(h, tf.matMul(ctx, p.attS as tf.Tensor2D));
      if (p.lookQ && enc.lookKeys) h = tf.add(h, this.secondLook(enc, hPrev));
      hs.push(h);
    }
    return hs;
  }

  /** What the second look adds to the state: its attention from the previous state, read through `lookS`. */
  private secondLook(enc: Enc, h: tf.Tensor2D): tf.Tensor2D {
    const p = this.params;
    const q = tf.matMul(h, p.lookQ as tf.Tensor2D).expandDims(1);
    const att = tf.softmax(tf.div(tf.sum(tf.mul(enc.lookKeys!, q), 2), Math.sqrt(this.config.att)));
    const ctx = tf.sum(tf.mul(enc.cells, att.expandDims(2)), 1) as tf.Tensor2D;
    return tf.matMul(ctx, p.lookS as tf.Tensor2D);
  }

  private logits(h: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(h, this.params.outW as tf.Tensor2D), this.params.outB!);
  }

  /** Summed log-prob of masked targets: tokens [N,T], mask [N,T-1] (target t+1 given prefix ..t). */
  seqLogProb(img: Enc, tokens: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor1D {
    const [N, T] = tokens.shape;
    return this.targetLogProb(this.run(img, tokens.slice([0, 0], [N, T - 1]) as tf.Tensor2D), tokens, mask);
  }

  /** The masked targets' summed log-prob from the states a run left after each input token (at least T-1 of them). */
  private targetLogProb(hs: tf.Tensor2D[], tokens: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor1D {
    const [N, T] = tokens.shape;
    const logits = this.logits(tf.concat(hs.slice(0, T - 1), 0)); // [(T-1)N, V]
    const tgt = tokens
      .transpose()
      .slice([1, 0], [T - 1, N])
      .reshape([-1]) as tf.Tensor1D;
    const tokLp = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tgt, this.V).toFloat()), 1).reshape([T - 1, N]);
    return tf.sum(tf.mul(tokLp, mask.transpose()), 0) as tf.Tensor1D;
  }

  /** Log-probs over the five score tokens for each judge sequence and criterion: [N*5, 5], rows sequence-major. */
  judgeLogProbs(img: Enc, batch: JudgeBatch): tf.Tensor2D {
    return this.judgeFromStates(img, this.run(img, batch.tokens), batch.at);
  }

  /** The judgement read at each row's <judge> token (`at`, one-hot [T,N]) from a run's states. */
  private judgeFromStates(img: Enc, hs: tf.Tensor2D[], at: tf.Tensor2D): tf.Tensor2D {
    const N = at.shape[1];
    // a mask-weighted sum picks each row's state (no gather in the gradient path)
    const hJudge = tf.sum(tf.mul(tf.stack(hs.slice(0, at.shape[0])), at.expandDims(2)), 0) as tf.Tensor2D;
    const nc = CRITERIA.length;
    // tile: row i*5+c
    const hTile = tf.tile(hJudge.expandDims(1), [1, nc, 1]).reshape([N * nc, -1]) as tf.Tensor2D;
    const imgTile = tileEnc(img, nc);
    const crit = tf.tensor2d(
      Array.from({ length: N * nc }, (_, i) => CRIT0 + (i % nc)),
      [N * nc, 1],
      "int32",
    );
    const h = this.run(imgTile, crit, hTile, JUDGE_LEN)[0]!;
    const scoreLogits = this.logits(h).slice([0, SCORE0], [N * nc, 5]);
    return tf.logSoftmax(scoreLogits) as tf.Tensor2D;
  }

  // ---- data to tensors ----

  static answerBatch(items: { question: string; answer: string }[]): { tokens: tf.Tensor2D; mask: tf.Tensor2D; lens: number[] } {
    const T = PROMPT_LEN + ANSWER_LEN;
    const tok = new Int32Array(items.length * T);
    const mask = new Float32Array(items.length * (T - 1));
    const lens: number[] = [];
    items.forEach((it, i) => {
      const { tokens, len } = answerSequence(it.question, it.answer);
      tok.set(tokens, i * T);
      for (let j = 0; j < len; j++) mask[i * (T - 1) + PROMPT_LEN - 1 + j] = 1;
      lens.push(len);
    });
    return { tokens: tf.tensor2d(tok, [items.length, T], "int32"), mask: tf.tensor2d(mask, [items.length, T - 1]), lens };
  }

  /**
   * Judge sequences as tensors: tokens [N,T] cut after the batch's last <judge>, `at` (one-hot
   * [T,N], time-major) marking each row's <judge>, and the answer targets' mask [N,T-1] as in
   * {@link answerBatch} (the judge sequence begins with the answer sequence).
   */
  static judgeBatch(items: { question: string; answer: string }[]): JudgeBatch {
    const seqs = items.map((it) => judgeSequence(it.question, it.answer));
    const T = Math.max(...seqs.map((q) => q.at)) + 1;
    const n = items.length;
    const tok = new Int32Array(n * T);
    const at = new Float32Array(T * n);
    const mask = new Float32Array(n * (T - 1));
    seqs.forEach((q, i) => {
      tok.set(q.tokens.slice(0, T), i * T);
      at[q.at * n + i] = 1;
      for (let j = 0; j < q.len; j++) mask[i * (T - 1) + PROMPT_LEN - 1 + j] = 1;
    });
    return { tokens: tf.tensor2d(tok, [n, T], "int32"), at: tf.tensor2d(at, [T, n]), mask: tf.tensor2d(mask, [n, T - 1]), lens: seqs.map((q) => q.len) };
  }

  // ---- inference ----

  /** Length-averaged log-probs of answers (incl. <eos>), batched by `chunk`. */
  answerLogProbs(items: { image: RgbImage; question: string; answer: string }[], chunk = 128): number[] {
    const out: number[] = [];
    for (let s = 0; s < items.length; s += chunk) {
      const part = items.slice(s, s + chunk);
      const vals = tf.tidy(() => {
        const { tokens, mask, lens } = TinyVlm.answerBatch(part);
        const img = this.encode(imagesTensor(part.map((p) => p.image)));
        return tf.div(this.seqLogProb(img, tokens, mask), tf.tensor1d(lens));
      });
      out.push(...vals.dataSync());
      vals.dispose();
    }
    return out;
  }

  /** Log-probs of the five score tokens per criterion for each item: [items][5 criteria][5 scores]. */
  judgeDistributions(items: { image: RgbImage; question: string; answer: string }[], chunk = 128): number[][][] {
    const out: number[][][] = [];
    for (let s = 0; s < items.length; s += chunk) {
      const part = items.slice(s, s + chunk);
      const lp = tf.tidy(() => this.judgeLogProbs(this.encode(imagesTensor(part.map((p) => p.image))), TinyVlm.judgeBatch(part)));
      const d = lp.dataSync();
      lp.dispose();
      for (let i = 0; i < part.length; i++) {
        out.push(scoreRows(d, i));
      }
    }
    return out;
  }

  /**
   * Score per criterion for each item: [items][5] in CRITERIA order. The judge decodes the score
   * token at `temperature`: 1 = expected score under the model's distribution, below 1 = expected
   * score under the sharpened distribution softmax(logp / temperature), 0 = the most likely score
   * (greedy decoding, as an LLM judge that writes its score).
   */
  judgeScores(items: { image: RgbImage; question: string; answer: string }[], temperature = 1, chunk = 128): number[][] {
    return this.judgeDistributions(items, chunk).map((rows) => rows.map((lp) => scoreAt(lp, temperature)));
  }

  /**
   * Sample `k` answers per prompt. Temperature 0 = greedy. Each candidate draws from its own
   * PRNG stream seeded by (seed, prompt key, candidate index), so results do not depend on batching.
   */
  sample(prompts: { image: RgbImage; question: string; key: string }[], k: number, temperature: number, seed: number, maxTokens = 5, chunk = 256): string[][] {
    return this.sampleSteps(prompts, { k, temperature, seed, maxTokens, chunk }).map((row) => row.map((a) => detokenize(a.ids)));
  }

  /**
   * {@link sample} with what each answer's generation did: its token ids, whether it was cut at
   * the token limit (no <eos> chosen), and with `top` set, each step's log-prob and the `top` most
   * likely alternatives (./sampling.ts). `topP` cuts each draw to its nucleus.
   */
  sampleSteps(
    prompts: { image: RgbImage; question: string; key: string }[],
    o: { k: number; temperature: number; seed: number; maxTokens?: number; topP?: number; top?: number; chunk?: number },
  ): SampledAnswer[][] {
    const rows = prompts.flatMap((p, i) => Array.from({ length: o.k }, (_, j) => ({ p, i, j })));
    const res: SampledAnswer[][] = prompts.map(() => []);
    const step: StepSampling = { temperature: o.temperature, topP: o.topP, banned: new Set(BANNED_IN_ANSWERS) };
    const maxT = Math.min(o.maxTokens ?? 5, ANSWER_LEN - 1);
    const chunk = o.chunk ?? 256;
    for (let s = 0; s < rows.length; s += chunk) {
      const part = rows.slice(s, s + chunk);
      const n = part.length;
      const rngs = part.map((r) => makeRng(hashSeed("sample", o.seed, r.p.key, r.j)));
      const out: SampledAnswer[] = part.map(() => ({ ids: [], cut: false, steps: o.top === undefined ? undefined : [] }));
      const done = new Array(n).fill(false);
      const [hPrompt, iv, ic, ik, il] = tf.tidy(() => {
        const im = this.encode(imagesTensor(part.map((r) => r.p.image)));
        const pt = tf.tensor2d(
          part.flatMap((r) => promptTokens(r.p.question)),
          [n, PROMPT_LEN],
          "int32",
        );
        const hs = this.run(im, pt);
        return [hs[hs.length - 1]!, im.vec, im.cells, im.keys, ...(im.lookKeys ? [im.lookKeys] : [])];
      });
      const img: Enc = { vec: iv as tf.Tensor2D, cells: ic as tf.Tensor3D, keys: ik as tf.Tensor3D, ...(il ? { lookKeys: il as tf.Tensor3D } : {}) };
      let h = hPrompt;
      for (let t = 0; t < maxT; t++) {
        const lg = tf.tidy(() => this.logits(h));
        const d = lg.dataSync();
        lg.dispose();
        const next = new Int32Array(n);
        for (let i = 0; i < n; i++) {
          if (done[i]) continue;
          const row = d.subarray(i * this.V, (i + 1) * this.V);
          const choice = pickToken(row, step, rngs[i]!);
          if (choice === EOS) done[i] = true;
          else {
            out[i]!.ids.push(choice);
            out[i]!.steps?.push(stepLogprobs(row, step.banned, choice, o.top!));
          }
          next[i] = choice;
        }
        if (done.every(Boolean) || t === maxT - 1) break;
        const nh = tf.tidy(() => this.run(img, tf.tensor2d(next, [n, 1], "int32"), h, PROMPT_LEN + t)[0]!);
        h.dispose();
        h = nh;
      }
      h.dispose();
      tf.dispose([img.vec, img.cells, img.keys, ...(img.lookKeys ? [img.lookKeys] : [])]);
      part.forEach((r, i) => {
        out[i]!.cut = !done[i];
        res[r.i]!.push(out[i]!);
      });
    }
    return res;
  }

  // ---- losses (call inside tf.tidy / optimizer.minimize) ----

  /** Mean token cross-entropy over answers plus mean judge cross-entropy (per criterion label). */
  ceLoss(
    ans: { images: tf.Tensor4D; tokens: tf.Tensor2D; mask: tf.Tensor2D } | undefined,
    judge: { images: tf.Tensor4D; batch: JudgeBatch; labels: tf.Tensor1D } | undefined,
    judgeWeight = 1,
  ): tf.Scalar {
    let loss: tf.Scalar = tf.scalar(0);
    if (ans) {
      const lp = this.seqLogProb(this.encode(ans.images), ans.tokens, ans.mask);
      loss = tf.add(loss, tf.neg(tf.div(tf.sum(lp), tf.sum(ans.mask))));
    }
    if (judge) {
      const lp = this.judgeLogProbs(this.encode(judge.images), judge.batch); // [N*5,5]
      const picked = tf.sum(tf.mul(lp, tf.oneHot(judge.labels, 5).toFloat()), 1);
      loss = tf.add(loss, tf.mul(judgeWeight, tf.neg(tf.mean(picked))));
    }
    return loss;
  }

  /**
   * SimPO on N pairs and, with `anchor`, self-distillation of the judge, in one pass: `seqs` holds
   * the judge sequences of the N chosen answers then the N rejected ones ({@link judgeBatch}), so
   * the states that give the answers' log-probs also give the member's judgement of them. The
   * anchor term is the cross-entropy of the current score-token distributions (2N rows x 5
   * criteria, sequence-major) against `anchor`, the same model's log-probs recorded before the
   * update ([2N*5, 5]): it keeps judging steady while answers are trained (learning without
   * forgetting).
   */
  simpoStep(
    images: tf.Tensor4D,
    seqs: JudgeBatch,
    beta: number,
    gamma: number,
    sftWeight: number,
    anchor?: tf.Tensor2D,
  ): { loss: tf.Scalar; simpo: tf.Scalar; nll: tf.Scalar; margin: tf.Tensor1D; anchor?: tf.Scalar } {
    const N = images.shape[0];
    const one = this.encode(images);
    const img = catEnc(one, one);
    const hs = this.run(img, seqs.tokens);
    const lp = this.targetLogProb(hs, seqs.tokens, seqs.mask);
    const s = simpoObjective(lp, tf.tensor1d(seqs.lens), N, beta, gamma, sftWeight);
    if (!anchor) return s;
    const lpJudge = this.judgeFromStates(img, hs, seqs.at);
    const a = tf.neg(tf.mean(tf.sum(tf.mul(tf.exp(anchor), lpJudge), 1))) as tf.Scalar;
    return { ...s, anchor: a };
  }

  /**
   * Length-averaged log-prob of each answer and the five score-token distributions per criterion
   * the member gives it ([items][5][5]), from one pass per chunk.
   */
  answerAndJudge(items: { image: RgbImage; question: string; answer: string }[], chunk = 128): { avgLogProb: number[]; judge: number[][][] } {
    const avgLogProb: number[] = [];
    const judge: number[][][] = [];
    for (let s = 0; s < items.length; s += chunk) {
      const part = items.slice(s, s + chunk);
      const [lpT, jT] = tf.tidy(() => {
        const b = TinyVlm.judgeBatch(part);
        const img = this.encode(imagesTensor(part.map((p) => p.image)));
        const hs = this.run(img, b.tokens);
        return [tf.div(this.targetLogProb(hs, b.tokens, b.mask), tf.tensor1d(b.lens)), this.judgeFromStates(img, hs, b.at)];
      });
      avgLogProb.push(...lpT.dataSync());
      const d = jT.dataSync();
      tf.dispose([lpT, jT]);
      for (let i = 0; i < part.length; i++) judge.push(scoreRows(d, i));
    }
    return { avgLogProb, judge };
  }

  // ---- weights ----

  /** SHA-256 (hex, first 16 chars) of the float32 weights in file order. */
  weightHash(): string {
    const h = createHash("sha256");
    for (const v of this.variables) {
      const d = v.dataSync() as Float32Array;
      h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    }
    return h.digest("hex").slice(0, 16);
  }

  /** Serialise: "POPTINY\0", u32 format version, u32 header bytes, JSON header, pad to 4, float32 LE data. */
  serialize(meta: Record<string, unknown> = {}): Uint8Array {
    const shapes = paramShapes(this.config);
    const header = new TextEncoder().encode(JSON.stringify({ config: this.config, tensors: shapes.map(([n, s]) => ({ name: n, shape: s })), meta }));
    const headLen = header.length + ((4 - ((16 + header.length) % 4)) % 4);
    const total = shapes.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
    const buf = new Uint8Array(16 + headLen + total * 4);
    buf.set(MAGIC, 0);
    const dv = new DataView(buf.buffer);
    dv.setUint32(8, FORMAT_VERSION, true);
    dv.setUint32(12, headLen, true);
    buf.set(header, 16);
    buf.fill(0x20, 16 + header.length, 16 + headLen);
    let off = 16 + headLen;
    for (const [n] of shapes) {
      const d = this.params[n]!.dataSync() as Float32Array;
      for (let i = 0; i < d.length; i++, off += 4) dv.setFloat32(off, d[i]!, true);
    }
    return buf;
  }

  /** Parse a weights file and build a model. */
  static deserialize(bytes: Uint8Array): { model: TinyVlm; meta: Record<string, unknown> } {
    const { config, meta, data } = parseWeights(bytes);
    const m = TinyVlm.init(0, config);
    m.assign(data);
    return { model: m, meta };
  }

  /** Replace the weights with a parsed file's data (same config). */
  assign(data: Map<string, Float32Array>): void {
    for (const [n, s] of paramShapes(this.config)) {
      const d = data.get(n);
      if (!d) throw new Error(`weights file lacks tensor ${n}`);
      this.params[n]!.assign(tf.tensor(d, s));
    }
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}

/** An encoded image batch. */
/** Item `i`'s five criteria x five score-token log-probs from a judge output laid out [items*5, 5]. */
function scoreRows(d: Float32Array | Int32Array | Uint8Array, i: number): number[][] {
  return Array.from({ length: 5 }, (_, c) => Array.from(d.subarray((i * 5 + c) * 5, (i * 5 + c + 1) * 5)));
}

/** Judge sequences as tensors ({@link TinyVlm.judgeBatch}). */
export interface JudgeBatch {
  tokens: tf.Tensor2D;
  at: tf.Tensor2D;
  mask: tf.Tensor2D;
  lens: number[];
}

export interface Enc {
  vec: tf.Tensor2D;
  cells: tf.Tensor3D;
  keys: tf.Tensor3D;
  /** The second look's keys (members with `secondLook`). */
  lookKeys?: tf.Tensor3D;
}
/** Repeat each row `r` times (row i*r+j = row i). */
function tileEnc(e: Enc, r: number): Enc {
  const n = e.vec.shape[0];
  return {
    vec: tf.tile(e.vec.expandDims(1), [1, r, 1]).reshape([n * r, -1]) as tf.Tensor2D,
    cells: tf.tile(e.cells.expandDims(1), [1, r, 1, 1]).reshape([n * r, 16, -1]) as tf.Tensor3D,
    keys: tf.tile(e.keys.expandDims(1), [1, r, 1, 1]).reshape([n * r, 16, -1]) as tf.Tensor3D,
    ...(e.lookKeys ? { lookKeys: tf.tile(e.lookKeys.expandDims(1), [1, r, 1, 1]).reshape([n * r, 16, -1]) as tf.Tensor3D } : {}),
  };
}
function catEnc(a: Enc, b: Enc): Enc {
  const base = { vec: tf.concat([a.vec, b.vec], 0), cells: tf.concat([a.cells, b.cells], 0), keys: tf.concat([a.keys, b.keys], 0) };
  return a.lookKeys && b.lookKeys ? { ...base, lookKeys: tf.concat([a.lookKeys, b.lookKeys], 0) } : base;
}

export { FORMAT_VERSION, MAGIC };

/** Parse and validate a tiny weights file. */
export function parseWeights(bytes: Uint8Array): { config: TinyConfig; meta: Record<string, unknown>; data: Map<string, Float32Array> } {
  if (bytes.length < 16 || !MAGIC.every((b, i) => bytes[i] === b)) throw new Error("not a tiny weights file (bad magic)");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== FORMAT_VERSION) throw new Error(`unsupported tiny weights format version ${version}`);
  const headLen = dv.getUint32(12, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + headLen))) as {
    config: TinyConfig;
    tensors: { name: string; shape: number[] }[];
    meta: Record<string, unknown>;
  };
  const expected = paramShapes(header.config);
  const data = new Map<string, Float32Array>();
  let off = 16 + headLen;
  for (const [i, t] of header.tensors.entries()) {
    const [en, es] = expected[i] ?? [];
    if (t.name !== en || JSON.stringify(t.shape) !== JSON.stringify(es)) throw new Error(`weights file tensor ${t.name} does not match the model layout`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let j = 0; j < n; j++, off += 4) d[j] = dv.getFloat32(off, true);
    data.set(t.name, d);
  }
  if (off !== bytes.length) throw new Error("weights file has trailing or missing bytes");
  return { config: header.config, meta: header.meta, data };
}

/**
 * The SimPO objective from sequence log-probs: `lp` holds the summed log-probs of the N chosen
 * answers then the N rejected ones, `len` their token counts (incl. <eos>). Loss = mean over pairs
 * of softplus(-(beta * margin - gamma)) with margin = lp_w/|y_w| - lp_l/|y_l|, plus
 * sftWeight x the mean length-normalised NLL of the chosen answers (CPO-SimPO). The Python
 * trainer (actors/trainers/python/simpo.py) computes the same function; a test holds them equal.
 */
export function simpoObjective(
  lp: tf.Tensor1D,
  len: tf.Tensor1D,
  N: number,
  beta: number,
  gamma: number,
  sftWeight = 0,
): { loss: tf.Scalar; margin: tf.Tensor1D; simpo: tf.Scalar; nll: tf.Scalar } {
  const avg = tf.div(lp, len);
  const margin = tf.sub(avg.slice([0], [N]), avg.slice([N], [N])) as tf.Tensor1D;
  const simpo = simpoFromMargin(margin, beta, gamma);
  // Length-averaged NLL of the chosen answers: reported whatever its weight, added when weighted.
  const nll = tf.neg(tf.mean(avg.slice([0], [N]))) as tf.Scalar;
  if (!sftWeight) return { loss: simpo, margin, simpo, nll };
  return { loss: tf.add(simpo, tf.mul(sftWeight, nll)) as tf.Scalar, margin, simpo, nll };
}

/** SimPO loss from length-averaged margins: mean softplus(-(beta*margin - gamma)). */
export function simpoFromMargin(margin: tf.Tensor1D, beta: number, gamma: number): tf.Scalar {
  return tf.mean(tf.softplus(tf.neg(tf.sub(tf.mul(beta, margin), gamma)))) as tf.Scalar;
}

/** Score 1..5 decoded from the five score-token log-probs at a temperature (see {@link TinyVlm.judgeScores}). */
export function scoreAt(lp: number[], temperature: number): number {
  return expectedScore(lp, temperature)!;
}
