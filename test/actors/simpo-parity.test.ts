/**
 * The Python trainer's SimPO core (actors/trainers/python/simpo.py) against the tiny model's
 * TypeScript objective (actors/models/tiny/model.ts `simpoObjective`): same loss, same gradient with
 * respect to the summed log-probs, on realistic random inputs. Python runs in float64 through
 * actors/trainers/python/simpo_check.py with Debian's /usr/bin/python3 (POP_PYTHON overrides it);
 * tfjs runs in float32, hence the 1e-5 relative tolerance.
 *
 * A missing torch fails the test (run `bash deploy/ops/setup.sh`); only POP_SKIP_PYTHON skips it.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { simpoObjective } from "../../actors/models/tiny/model.ts";
import { makeRng } from "../../actors/random/rng.ts";
import { initTf, tf } from "../../actors/models/tiny/tf.ts";

const PYTHON = process.env.POP_PYTHON || "/usr/bin/python3";
const DRIVER = fileURLToPath(new URL("../../actors/trainers/python/simpo_check.py", import.meta.url));
const SKIP = Boolean(process.env.POP_SKIP_PYTHON);

interface SimpoCase {
  lp: number[];
  len: number[];
  n: number;
  beta: number;
  gamma: number;
  sft_weight: number;
}
interface LogprobCase {
  logits: number[][][];
  labels: number[][];
  mask: number[][] | null;
}
interface Reply {
  torch: string;
  simpo: { loss: number; grad: number[]; margin: number[] }[];
  logprobs: { lp: number[]; counts: number[]; grad: number[][][] }[];
}

/** Runs the driver on one request; its stderr is in the error when it fails. */
function runDriver(request: { simpo?: SimpoCase[]; logprobs?: LogprobCase[] }): Reply {
  const r = spawnSync(PYTHON, [DRIVER], {
    input: JSON.stringify(request),
    encoding: "utf8",
    timeout: 120_000,
    maxBuffer: 64 << 20,
    // No __pycache__ next to the sources: the repository does not ignore it.
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${PYTHON} ${DRIVER} exited ${r.status}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Reply;
}

/**
 * Fixed random SimPO inputs: summed log-probs of answers of 1..40 tokens whose per-token
 * log-probs lie in (-9, 0] and lean towards 0 (per-answer means from -0.02 to -3, as a trained
 * model gives to good and to poor answers); some pairs have a chosen answer much likelier than the
 * rejected one and some the reverse, so both flat and steep parts
 * of the softplus are visited. Values are rounded to float32 first, so both sides see the same
 * numbers.
 */
function simpoCases(): SimpoCase[] {
  const rng = makeRng(20251128);
  const cases: SimpoCase[] = [];
  for (const n of [1, 2, 3, 8, 32]) {
    for (const beta of [2, 2.5]) {
      for (const gamma of [0.5, 1.4]) {
        for (const sft of [0, 1]) {
          const len: number[] = [];
          const lp: number[] = [];
          for (let i = 0; i < 2 * n; i++) {
            const tokens = 1 + rng.int(40);
            const scale = 0.05 + 9 * rng.next();
            let sum = 0;
            for (let t = 0; t < tokens; t++) sum -= scale * rng.next() ** 2;
            len.push(tokens);
            lp.push(Math.fround(sum));
          }
          cases.push({ lp, len, n, beta, gamma, sft_weight: sft });
        }
      }
    }
  }
  return cases;
}

/** Loss, gradient d loss / d lp and margins from the TypeScript objective (tfjs, float32). */
function tsSimpo(c: SimpoCase): { loss: number; grad: number[]; margin: number[] } {
  return tf.tidy(() => {
    const lp = tf.tensor1d(c.lp);
    const len = tf.tensor1d(c.len);
    const f = (x: tf.Tensor) => simpoObjective(x as tf.Tensor1D, len, c.n, c.beta, c.gamma, c.sft_weight).loss;
    const { value, grad } = tf.valueAndGrad(f)(lp);
    const margin = simpoObjective(lp, len, c.n, c.beta, c.gamma, c.sft_weight).margin;
    return { loss: value.dataSync()[0]!, grad: Array.from(grad.dataSync()), margin: Array.from(margin.dataSync()) };
  });
}

/** |got - want| within rel x |want| plus an absolute floor; the message names the worst element. */
function expectClose(got: number[], want: number[], rel: number, floor: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i]! - want[i]!) - (rel * Math.abs(want[i]!) + floor);
    if (excess > worstExcess) [worst, worstExcess] = [i, excess];
  }
  expect(worst, `${what}: element ${worst} is ${got[worst]} (TypeScript) vs ${want[worst]} (Python)`).toBe(-1);
}

/** A small deterministic log-prob batch: 3 sequences of 6 tokens over a vocabulary of 7. */
function logprobCase(withMask: boolean): LogprobCase {
  const rng = makeRng(7);
  const [B, T, V] = [3, 6, 7];
  const logits = Array.from({ length: B }, () => Array.from({ length: T }, () => Array.from({ length: V }, () => 4 * rng.next() - 2)));
  const labels = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(V)));
  // Answer positions: the last 2, the last 4 then one pad, and position 0 + the last 1 (position 0
  // has no preceding logits and must not count).
  const mask = [
    [0, 0, 0, 0, 1, 1],
    [0, 1, 1, 1, 1, 0],
    [1, 0, 0, 0, 0, 1],
  ];
  if (withMask) return { logits, labels, mask };
  // Hugging Face's convention instead of a mask: -100 where nothing is scored.
  return { logits, labels: labels.map((row, b) => row.map((id, t) => (mask[b]![t] ? id : -100))), mask: null };
}

/** The same in plain float64 JavaScript: shifted log-softmax sums, counts, and d sum(lp) / d logits. */
function handLogprobs(c: LogprobCase): { lp: number[]; counts: number[]; grad: number[][][] } {
  const scored = (b: number, t: number) => (c.mask ? c.mask[b]![t] === 1 : c.labels[b]![t] !== -100);
  const lp: number[] = [];
  const counts: number[] = [];
  const grad = c.logits.map((seq) => seq.map((row) => row.map(() => 0)));
  c.logits.forEach((seq, b) => {
    let sum = 0;
    let count = 0;
    for (let t = 1; t < seq.length; t++) {
      if (!scored(b, t)) continue;
      const row = seq[t - 1]!;
      const max = Math.max(...row);
      const z = row.reduce((s, x) => s + Math.exp(x - max), 0);
      const label = c.labels[b]![t]!;
      sum += row[label]! - max - Math.log(z);
      count++;
      row.forEach((x, v) => (grad[b]![t - 1]![v] = (v === label ? 1 : 0) - Math.exp(x - max) / z));
    }
    lp.push(sum);
    counts.push(count);
  });
  return { lp, counts, grad };
}

describe.skipIf(SKIP)("simpo.py (Python, float64) against simpoObjective (TypeScript, float32)", () => {
  let reply: Reply;
  const cases = simpoCases();
  const lpCases = [logprobCase(true), logprobCase(false)];

  beforeAll(async () => {
    const probe = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8", timeout: 60_000 });
    if (probe.error || probe.status !== 0) {
      const why = probe.error ? probe.error.message : (probe.stderr ?? "").trim().split("\n").pop();
      throw new Error(
        `${PYTHON} cannot import torch (${why}). Run \`bash deploy/ops/setup.sh\` (as root on Debian it installs python3-torch), ` +
          `or point POP_PYTHON at an interpreter with torch; set POP_SKIP_PYTHON=1 only to skip this test on purpose.`,
      );
    }
    await initTf();
    reply = runDriver({ simpo: cases, logprobs: lpCases });
  }, 180_000);

  it(`gives the same loss, margins and d loss / d lp on ${cases.length} cases (N 1..32, beta 2/2.5, gamma 0.5/1.4, sft 0/1)`, () => {
    expect(reply.simpo).toHaveLength(cases.length);
    cases.forEach((c, i) => {
      const label = `case ${i} (n ${c.n}, beta ${c.beta}, gamma ${c.gamma}, sft ${c.sft_weight})`;
      const py = reply.simpo[i]!;
      const ts = tsSimpo(c);
      expectClose([ts.loss], [py.loss], 1e-5, 0, `${label} loss`);
      // Gradients can be small for pairs deep in the softplus' flat part: the floor is a
      // millionth of the largest element, far below anything that matters to an optimiser.
      const gmax = Math.max(...py.grad.map(Math.abs));
      expectClose(ts.grad, py.grad, 1e-5, 1e-6 * gmax, `${label} gradient`);
      // A margin is a difference of two averages, so its float32 error scales with the averages.
      const avgMax = Math.max(...c.lp.map((x, k) => Math.abs(x / c.len[k]!)));
      expectClose(ts.margin, py.margin, 1e-5, 1e-6 * avgMax, `${label} margin`);
    });
  });

  it("is not vacuous: the cases span both sides of the margin and both regimes of the loss", () => {
    const margins = reply.simpo.flatMap((r) => r.margin);
    expect(Math.min(...margins)).toBeLessThan(-1);
    expect(Math.max(...margins)).toBeGreaterThan(1);
    // softplus(-z) with z = beta x margin - gamma: near-linear for z << 0, flat for z >> 0.
    const z = reply.simpo.flatMap((r, i) => r.margin.map((m) => cases[i]!.beta * m - cases[i]!.gamma));
    expect(Math.min(...z)).toBeLessThan(-3);
    expect(Math.max(...z)).toBeGreaterThan(3);
  });

  it("sequence_logprobs sums shifted log-softmax over answer tokens only, with a mask or -100 labels", () => {
    expect(reply.logprobs).toHaveLength(lpCases.length);
    lpCases.forEach((c, i) => {
      const want = handLogprobs(c);
      const got = reply.logprobs[i]!;
      const label = c.mask ? "with a mask" : "with -100 labels";
      expect(got.counts, label).toEqual([2, 4, 1]);
      expect(got.counts, label).toEqual(want.counts);
      expectClose(got.lp, want.lp, 1e-12, 1e-12, `${label} lp`);
      expectClose(got.grad.flat(2), want.grad.flat(2), 1e-12, 1e-12, `${label} d sum(lp) / d logits`);
      // The last position predicts nothing, so it never gets a gradient.
      for (const seq of got.grad)
        expect(
          seq[seq.length - 1]!.every((g) => g === 0),
          label,
        ).toBe(true);
    });
  });
});
