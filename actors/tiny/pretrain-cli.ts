/**
 * Reproduce the shipped checkpoints: `npm run pretrain [-- --only ocrdumb --steps 600 --out dir]`.
 * Each member is a pure function of its seed (PANEL in pretrain.ts) and the step count.
 * Members are independent: `--only a,b` trains a subset (run several processes to use more cores).
 */
import { writeFile, mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import { initTf } from "./tf.ts";
import { PANEL, PRETRAIN_DEFAULTS, pretrainMember } from "./pretrain.ts";
import { evaluateModel } from "./evaluate.ts";

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    steps: { type: "string", default: String(PRETRAIN_DEFAULTS.steps) },
    out: { type: "string", default: "actors/tiny/checkpoints" },
    "eval-every": { type: "string", default: "0" },
  },
});
console.log(`backend ${await initTf()}`);
await mkdir(values.out!, { recursive: true });
for (const spec of PANEL.filter((m) => !values.only || values.only.split(",").includes(m.name))) {
  const t0 = performance.now();
  const model = pretrainMember(spec, { steps: Number(values.steps), evalEvery: Number(values["eval-every"]), log: console.log });
  const ev = evaluateModel(model);
  const bytes = model.serialize({ name: spec.name, gap: spec.gap, keep: spec.keep, seed: spec.seed, steps: Number(values.steps) });
  await writeFile(`${values.out}/${spec.name}.bin`, bytes);
  console.log(`${spec.name}: ${JSON.stringify(ev.suites)} avg ${ev.average.toFixed(3)}; ${(bytes.length / 1024).toFixed(0)} KiB, ${((performance.now() - t0) / 1000).toFixed(0)} s, version ${model.weightHash()}`);
  model.dispose();
}
