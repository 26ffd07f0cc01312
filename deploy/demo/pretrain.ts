/**
 * Reproduce the shipped checkpoints: `npm run pretrain [-- --only ocrdumb --steps 900 --out dir]`.
 *
 * Stage 1 trains the shared vision tower (`--encoder-steps`, seed ENCODER_SEED) and writes it to
 * `--encoder` (reused when the file exists; `--fresh-encoder` retrains it). Stage 2 trains each
 * member (frozen tower, own language part) from its seed. Everything is a pure function of the
 * seeds and step counts. Members are independent: after stage 1, `--only a,b` trains a subset, so
 * several processes can share the cores.
 */
import { writeFile, mkdir, readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { initTf } from "../../actors/models/tiny/tf.ts";
import { ENCODER_DEFAULTS, PANEL, PRETRAIN_DEFAULTS, pretrainEncoder, pretrainMember } from "../../actors/models/tiny/pretrain.ts";
import { evaluateModel } from "../../actors/models/tiny/evaluate.ts";
import { TinyVlm } from "../../actors/models/tiny/model.ts";
import { ProgressReporter } from "../cli/progress.ts";

/** Progress of one model's pretraining on stderr (a bar on a terminal, a line every 10 s otherwise). */
function stepProgress(label: string): { onStep: (done: number, total: number, loss: number) => void; finish: () => void } {
  let bar: ProgressReporter | undefined;
  return {
    onStep: (done, total, loss) => (bar ??= new ProgressReporter(label, total, { unit: "steps" })).update(done, `loss ${loss.toFixed(3)}`, total),
    finish: () => bar?.finish(),
  };
}

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    steps: { type: "string", default: String(PRETRAIN_DEFAULTS.steps) },
    "encoder-steps": { type: "string", default: String(ENCODER_DEFAULTS.steps) },
    encoder: { type: "string", default: "actors/models/tiny/scratch/vision-tower.bin" },
    "fresh-encoder": { type: "boolean", default: false },
    out: { type: "string", default: "actors/models/tiny/checkpoints" },
    "eval-every": { type: "string", default: "0" },
    "refine-steps": { type: "string", default: String(PRETRAIN_DEFAULTS.refineSteps) },
    /** Directory of members already through the first member phase (same seeds and --steps): only the refinement runs. */
    resume: { type: "string" },
  },
});
console.log(`backend ${await initTf()}`);
await mkdir(values.out!, { recursive: true });
const evalEvery = Number(values["eval-every"]);
let encoder: TinyVlm;
if (existsSync(values.encoder!) && !values["fresh-encoder"]) {
  encoder = TinyVlm.deserialize(new Uint8Array(await readFile(values.encoder!))).model;
  console.log(`vision tower: reusing ${values.encoder} (version ${encoder.weightHash()})`);
} else {
  const t0 = performance.now();
  const progress = stepProgress("vision tower");
  encoder = pretrainEncoder({ steps: Number(values["encoder-steps"]), evalEvery, log: console.log, onStep: progress.onStep });
  progress.finish();
  await mkdir(dirname(values.encoder!), { recursive: true });
  await writeFile(values.encoder!, encoder.serialize({ name: "vision-tower", steps: Number(values["encoder-steps"]) }));
  console.log(`vision tower: ${((performance.now() - t0) / 1000).toFixed(0)} s, version ${encoder.weightHash()}, written to ${values.encoder}`);
}
for (const spec of PANEL.filter((m) => !values.only || values.only.split(",").includes(m.name))) {
  const t0 = performance.now();
  const resume = values.resume ? TinyVlm.deserialize(new Uint8Array(await readFile(`${values.resume}/${spec.name}.bin`))).model : undefined;
  const progress = stepProgress(spec.name);
  const o = { steps: Number(values.steps), refineSteps: Number(values["refine-steps"]), evalEvery, log: console.log, onStep: progress.onStep };
  const model = pretrainMember(spec, o, encoder, resume);
  progress.finish();
  const ev = evaluateModel(model);
  const bytes = model.serialize({
    name: spec.name,
    gaps: spec.gaps,
    keep: spec.keep,
    answerKeep: spec.answerKeep ?? {},
    seed: spec.seed,
    steps: o.steps,
    refineSteps: o.refineSteps,
    refineKeep: PRETRAIN_DEFAULTS.refineKeep,
    encoderSteps: Number(values["encoder-steps"]),
  });
  await writeFile(`${values.out}/${spec.name}.bin`, bytes);
  console.log(
    `${spec.name}: ${JSON.stringify(ev.suites)} avg ${ev.average.toFixed(3)}; ${(bytes.length / 1024).toFixed(0)} KiB, ${((performance.now() - t0) / 1000).toFixed(0)} s, version ${model.weightHash()}`,
  );
  model.dispose();
}
