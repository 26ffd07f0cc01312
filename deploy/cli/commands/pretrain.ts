/**
 * `pop pretrain`: make a tiny checkpoint from its seed. `--peer NAME --out FILE` trains one member
 * (a shipped member's recipe by its name, or a new member from any other name); without --peer
 * the whole shipped panel is reproduced into a folder. The shipped checkpoints are never
 * overwritten unless --overwrite-shipped says so: a run that only wanted a copy must not replace
 * what the demo and the tests load.
 *
 * Stage 1 trains the shared vision tower (`--encoder-steps`, seed ENCODER_SEED) and writes it to
 * `--encoder` (reused when the file exists; `--fresh-encoder` retrains it). Stage 2 trains each
 * member (frozen tower, own language part) from its seed. Everything is a pure function of the
 * seeds and step counts.
 */
import { writeFile, mkdir, readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { initTf } from "../../../actors/models/tiny/tf.ts";
import { ENCODER_DEFAULTS, PANEL, PRETRAIN_DEFAULTS, pretrainEncoder, pretrainMember, type MemberSpec } from "../../../actors/models/tiny/pretrain.ts";
import { CHECKPOINT_DIR } from "../../../actors/models/tiny/checkpoints.ts";
import { evaluateModel } from "../../../actors/models/tiny/evaluate.ts";
import { TinyVlm } from "../../../actors/models/tiny/model.ts";
import { FAMILIES, type Family } from "../../../actors/models/tiny/world.ts";
import { hashSeed } from "../../../actors/random/rng.ts";
import { ProgressReporter } from "../progress.ts";
import { UsageError, type Flags } from "../args.ts";

/** Where the shared vision tower is kept between runs (git-ignored). */
const DEFAULT_ENCODER = fileURLToPath(new URL("../../../actors/models/tiny/scratch/vision-tower.bin", import.meta.url));
/** A new member's gap families keep this share of their data, like the shipped members'. */
const NEW_MEMBER_KEEP = 0.05;

export const pretrainHelp = `pop pretrain --peer NAME --out FILE [options]
pop pretrain --out DIR [--only A,B] [options]

Makes a tiny checkpoint from its seed. With --peer, one member: a shipped member's name
(${PANEL.map((m) => m.name).join(", ")}) reproduces its recipe; any other name makes a new member,
seeded from the name, lacking the --gaps families. Without --peer, the whole shipped panel
(or --only some of it) goes into the folder DIR as NAME.bin. Then, e.g.:
  pop actor --peer mine --checkpoint FILE --experiment exp1

  --peer NAME            the member to train                      default: the whole panel
  --out PATH             FILE with --peer, else a folder          required
  --gaps A,B             a new member's weak families, of ${FAMILIES.join(",")}   default: none
  --only A,B             without --peer: train only these shipped members
  --steps N              member steps                             default: ${PRETRAIN_DEFAULTS.steps}
  --refine-steps N       refinement steps after them              default: ${PRETRAIN_DEFAULTS.refineSteps}
  --encoder-steps N      vision tower steps                       default: ${ENCODER_DEFAULTS.steps}
  --encoder FILE         the shared vision tower, reused if there default: actors/models/tiny/scratch/vision-tower.bin
  --fresh-encoder        retrain the vision tower even if --encoder exists
  --eval-every N         evaluate and log every N steps (0: never) default: 0
  --resume DIR           members already through the first phase (same seeds and --steps): refine only
  --force                overwrite an existing checkpoint file
  --overwrite-shipped    allow writing into the shipped checkpoints (${relativeToCwd(CHECKPOINT_DIR)})

Training takes minutes per member on one core (the vision tower, once, about as long again).`;

function relativeToCwd(path: string): string {
  const here = process.cwd() + "/";
  return path.startsWith(here) ? path.slice(here.length) : path;
}

/** The checkpoint files this run would write, checked before any training so a refusal costs nothing. */
function checkTargets(files: string[], force: boolean, overwriteShipped: boolean): void {
  const shipped = resolve(CHECKPOINT_DIR);
  for (const file of files) {
    if (resolve(dirname(file)) === shipped && !overwriteShipped)
      throw new UsageError(
        `${file} is in the shipped checkpoints (${shipped}); pass --overwrite-shipped to replace them, or choose another --out`,
        pretrainHelp,
      );
    if (existsSync(file) && !force && !(resolve(dirname(file)) === shipped && overwriteShipped))
      throw new UsageError(`${file} exists; pass --force to overwrite it`, pretrainHelp);
  }
}

function listOf(flags: Flags, name: string): string[] | undefined {
  const s = flags.string(name);
  return s === undefined ? undefined : s.split(",").filter(Boolean);
}

/** The recipe for --peer NAME: a shipped member's, or a new member's from its name and gaps. */
function memberSpec(name: string, gaps: string[] | undefined): MemberSpec {
  const shipped = PANEL.find((m) => m.name === name);
  if (shipped) {
    if (gaps) throw new UsageError(`--gaps is for a new member; ${name} is a shipped member with its own (${shipped.gaps.join(",")})`, pretrainHelp);
    return shipped;
  }
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) throw new UsageError(`--peer must be lower-case letters, digits, - or _, got '${name}'`, pretrainHelp);
  const bad = (gaps ?? []).filter((g) => !(FAMILIES as readonly string[]).includes(g));
  if (bad.length) throw new UsageError(`--gaps: unknown famil${bad.length > 1 ? "ies" : "y"} ${bad.join(", ")} (known: ${FAMILIES.join(", ")})`, pretrainHelp);
  return { name, gaps: (gaps ?? []) as Family[], keep: NEW_MEMBER_KEEP, seed: hashSeed("tiny-member", name) };
}

/** Progress of one model's pretraining on stderr (a bar on a terminal, a line every 10 s otherwise). */
function stepProgress(label: string): { onStep: (done: number, total: number, loss: number) => void; finish: () => void } {
  let bar: ProgressReporter | undefined;
  return {
    onStep: (done, total, loss) => (bar ??= new ProgressReporter(label, total, { unit: "steps" })).update(done, `loss ${loss.toFixed(3)}`, total),
    finish: () => bar?.finish(),
  };
}

export async function runPretrain(flags: Flags): Promise<void> {
  const peer = flags.string("peer");
  const out = flags.string("out");
  if (!out) throw new UsageError("--out is required (a FILE with --peer, a folder without)", pretrainHelp);
  const only = peer ? undefined : listOf(flags, "only");
  const gaps = peer ? listOf(flags, "gaps") : undefined;
  const steps = flags.int("steps", { min: 0 }) ?? PRETRAIN_DEFAULTS.steps;
  const refineSteps = flags.int("refine-steps", { min: 0 }) ?? PRETRAIN_DEFAULTS.refineSteps;
  const encoderSteps = flags.int("encoder-steps", { min: 0 }) ?? ENCODER_DEFAULTS.steps;
  const encoderFile = flags.string("encoder") ?? DEFAULT_ENCODER;
  const freshEncoder = flags.bool("fresh-encoder");
  const evalEvery = flags.int("eval-every", { min: 0 }) ?? 0;
  const resume = flags.string("resume");
  const force = flags.bool("force");
  const overwriteShipped = flags.bool("overwrite-shipped");
  flags.rejectUnknown();

  let jobs: { spec: MemberSpec; file: string }[];
  if (peer) {
    jobs = [{ spec: memberSpec(peer, gaps), file: out }];
  } else {
    const unknown = (only ?? []).filter((n) => !PANEL.some((m) => m.name === n));
    if (unknown.length) throw new UsageError(`--only: not a shipped member: ${unknown.join(", ")}`, pretrainHelp);
    jobs = PANEL.filter((m) => !only || only.includes(m.name)).map((spec) => ({ spec, file: join(out, `${spec.name}.bin`) }));
  }
  checkTargets(
    jobs.map((j) => j.file),
    force,
    overwriteShipped,
  );

  console.log(`backend ${await initTf()}`);
  let encoder: TinyVlm;
  if (existsSync(encoderFile) && !freshEncoder) {
    encoder = TinyVlm.deserialize(new Uint8Array(await readFile(encoderFile))).model;
    console.log(`vision tower: reusing ${encoderFile} (version ${encoder.weightHash()})`);
  } else {
    const t0 = performance.now();
    const progress = stepProgress("vision tower");
    encoder = pretrainEncoder({ steps: encoderSteps, evalEvery, log: console.log, onStep: progress.onStep });
    progress.finish();
    await mkdir(dirname(encoderFile), { recursive: true });
    await writeFile(encoderFile, encoder.serialize({ name: "vision-tower", steps: encoderSteps }));
    console.log(`vision tower: ${((performance.now() - t0) / 1000).toFixed(0)} s, version ${encoder.weightHash()}, written to ${encoderFile}`);
  }
  for (const { spec, file } of jobs) {
    const t0 = performance.now();
    const resumed = resume ? TinyVlm.deserialize(new Uint8Array(await readFile(join(resume, `${spec.name}.bin`)))).model : undefined;
    const progress = stepProgress(spec.name);
    const o = { steps, refineSteps, evalEvery, log: console.log, onStep: progress.onStep };
    const model = pretrainMember(spec, o, encoder, resumed);
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
      encoderSteps,
    });
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, bytes);
    console.log(
      `${spec.name}: ${JSON.stringify(ev.suites)} avg ${ev.average.toFixed(3)}; ${(bytes.length / 1024).toFixed(0)} KiB, ${((performance.now() - t0) / 1000).toFixed(0)} s, version ${model.weightHash()}, written to ${file}`,
    );
    model.dispose();
  }
  encoder.dispose();
}
