/**
 * In-process simulation of the PoP loop with the shipped panel (no NATS): per iteration every
 * member samples k candidates for N unlabeled pool prompts, judges the OTHER members' candidates
 * on five criteria (absolute, one candidate at a time), mean voting builds pooled pairs with the
 * paper's thresholds, and every member trains with SimPO on the same pairs from its previous
 * weights. Prints the member x suite x iteration table and the time of each phase per member.
 * The votes are the coordinator's own (coordinator/voting.ts), under the demo's voting settings.
 *
 *   npm run simulate:pop -- [--iterations 3] [--n 2000] [--k 4] [--temperature 0.7]
 *       [--beta 2] [--gamma 1] [--lr 1e-3] [--lr-decay 0.5] [--epochs 3] [--batch 16] [--sft 1]
 *       [--judge-anchor 1] [--pool-seed 7] [--judge-temperature 0.25] [--freeze-encoder 1]
 *       [--keep-optimizer 0] [--min-chosen 0.85] [--min-gap 0.75] [--dir actors/models/tiny/checkpoints]
 *       [--oracle-judge] [--json FILE]
 * The defaults are the demo's (deploy/demo/defaults.ts) and the tiny model's (actors/models/tiny/train.ts).
 * It also prints, per iteration, the mean normalised score each judge gives correct and other
 * candidates of each family (a blind judge shows as correct ≈ other).
 */
import { writeFileSync } from "node:fs";
import { scriptOptions } from "../cli/script-flags.ts";
import { TinyBackend, JUDGE_TEMPERATURE } from "../../actors/models/tiny/backend.ts";
import { judgeOnce } from "../../actors/models/judge-once.ts";
import { learningRateOf } from "../../actors/training.ts";
import { PANEL } from "../../actors/models/tiny/pretrain.ts";
import { FAMILIES, poolItem, itemPrompt } from "../../actors/models/tiny/world.ts";
import { classifyAnswer, oracleScores } from "../../actors/models/tiny/criteria.ts";
import { SIMPO_DEFAULTS } from "../../actors/models/tiny/train.ts";
import type { EvalResult, LikertScores, PreferenceInput, PromptInput } from "../../actors/models/contract.ts";
import { hashSeed } from "../../actors/random/rng.ts";
import { addToTally, newTally, votePrompt } from "../../coordinator/voting.ts";
import { PROTOCOL_VERSION } from "../../protocol/mod.ts";
import { DEMO_DEFAULTS } from "../demo/defaults.ts";

/** One sampled answer and its judges' scores. */
interface Candidate {
  promptId: string;
  author: string;
  answer: string;
  /** Scores by judge name. */
  scores: Record<string, LikertScores>;
}

const D = DEMO_DEFAULTS;
const T = D.overrides.training;

const HELP = `npm run simulate:pop [-- options]

The PoP loop in one process with the shipped panel, no NATS: sample, judge the other members,
vote, train every member with SimPO; prints the member x suite x iteration table and phase times.
The defaults are the demo's (deploy/demo/defaults.ts) and the tiny model's.

  --iterations N         PoP iterations                                  default: ${D.iterations}
  --n N                  pool prompts per iteration                      default: ${D.promptsPerIteration}
  --k N                  candidates per prompt and member                default: ${D.k}
  --temperature T        answer sampling temperature                     default: ${D.temperature}
  --beta X               SimPO beta                                      default: ${T.beta}
  --gamma X              SimPO gamma                                     default: ${T.gamma}
  --lr X                 learning rate of iteration 1                    default: ${T.learningRate}
  --lr-decay X           iteration i trains at lr x decay^(i-1)          default: ${T.learningRateDecay}
  --epochs N             epochs over each iteration's pairs              default: ${T.epochs}
  --batch N              pairs per step                                  default: ${T.batchSize}
  --sft X                weight of the SFT term on the chosen answer     default: ${T.sftWeight}
  --judge-anchor X       weight of the judge-anchor term                 default: ${SIMPO_DEFAULTS.judgeAnchor}
  --optimizer NAME       adam or sgd                                     default: ${SIMPO_DEFAULTS.optimizer}
  --eps X                Adam epsilon                                    default: ${SIMPO_DEFAULTS.adamEpsilon}
  --freeze-encoder N     1: keep the vision tower frozen, 0: train it    default: ${SIMPO_DEFAULTS.freezeEncoder ? 1 : 0}
  --keep-optimizer N     1: keep the optimizer state across iterations   default: 0
  --judge-temperature T  judging temperature                             default: ${JUDGE_TEMPERATURE}
  --pool-seed N          seed of the unlabeled prompt pool               default: ${D.poolSeed}
  --min-chosen X         voting: the chosen answer's least mean score    default: ${D.overrides.voting.minChosen}
  --min-gap X            voting: least chosen-rejected margin            default: ${D.overrides.voting.minMargin}
  --dir DIR              the members' checkpoints                        default: actors/models/tiny/checkpoints
  --oracle-judge         judges give the world's ground-truth scores (how far judge errors limit PoP)
  --json FILE            also write the phase times (ms per member per iteration) as JSON: what bench:demo-share reads`;
const a = scriptOptions("simulate:pop", HELP, {
  iterations: String(D.iterations),
  n: String(D.promptsPerIteration),
  k: String(D.k),
  temperature: String(D.temperature),
  beta: String(T.beta),
  gamma: String(T.gamma),
  lr: String(T.learningRate),
  "lr-decay": String(T.learningRateDecay),
  epochs: String(T.epochs),
  batch: String(T.batchSize),
  sft: String(T.sftWeight),
  "judge-anchor": String(SIMPO_DEFAULTS.judgeAnchor),
  optimizer: SIMPO_DEFAULTS.optimizer as string,
  eps: String(SIMPO_DEFAULTS.adamEpsilon),
  "freeze-encoder": SIMPO_DEFAULTS.freezeEncoder ? "1" : "0",
  "keep-optimizer": "0",
  "judge-temperature": String(JUDGE_TEMPERATURE),
  "pool-seed": String(D.poolSeed),
  "min-chosen": String(D.overrides.voting.minChosen),
  "min-gap": String(D.overrides.voting.minMargin),
  dir: "actors/models/tiny/checkpoints",
  "oracle-judge": false,
  json: undefined,
});
const I = Number(a.iterations),
  N = Number(a.n),
  K = Number(a.k),
  TEMP = Number(a.temperature);
const simpo = {
  beta: Number(a.beta),
  gamma: Number(a.gamma),
  learningRate: Number(a.lr),
  epochs: Number(a.epochs),
  batchSize: Number(a.batch),
  sftWeight: Number(a.sft),
  optimizer: a.optimizer as "adam" | "sgd",
  adamEpsilon: Number(a.eps),
  freezeEncoder: a["freeze-encoder"] !== "0",
  judgeAnchor: Number(a["judge-anchor"]),
};
const keepOptimizer = a["keep-optimizer"] !== "0";
const judgeTemperature = Number(a["judge-temperature"]);
const POOL = Number(a["pool-seed"]);
console.log(
  `settings: iterations ${I}, N ${N} prompts/iteration, k ${K}, temperature ${TEMP}, SimPO ${JSON.stringify(simpo)}, thresholds ${a["min-chosen"]}/${a["min-gap"]}, keepOptimizer ${keepOptimizer}, judgeTemperature ${judgeTemperature}`,
);

const names = PANEL.map((m) => m.name);
const members = await Promise.all(names.map((n) => TinyBackend.load(`${a.dir}/${n}.bin`, { keepOptimizer, judgeTemperature })));
const evals: EvalResult[][] = names.map(() => []);
const phase: Record<string, Record<string, number[]>> = { generate: {}, judge: {}, train: {}, evaluate: {} };
/** CPU ms of the same calls (the model runs on this thread): unlike wall time, not stretched by other work on the machine. */
const cpuPhase: Record<string, Record<string, number[]>> = { generate: {}, judge: {}, train: {}, evaluate: {} };
const time = async <T>(ph: string, who: string, f: () => Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await f();
  const c = process.cpuUsage(c0);
  (phase[ph]![who] ??= []).push(performance.now() - t0);
  (cpuPhase[ph]![who] ??= []).push((c.user + c.system) / 1000);
  return r;
};
const t00 = performance.now();
for (const [i, m] of members.entries()) evals[i]!.push(await time("evaluate", names[i]!, () => m.evaluate()));

const fmt = (x: number) => x.toFixed(2);
for (let it = 1; it <= I; it++) {
  const items = Array.from({ length: N }, (_, j) => poolItem(POOL, (it - 1) * N + j));
  const prompts: PromptInput[] = items.map(itemPrompt);
  const byId = new Map(items.map((x) => [x.id, x]));
  const promptById = new Map(prompts.map((p) => [p.id, p]));
  // 1. generate
  const cands: Candidate[] = [];
  for (const [i, m] of members.entries()) {
    const outs = await time("generate", names[i]!, () => m.generate(prompts, { k: K, temperature: TEMP, seed: hashSeed("pop-gen", it, names[i]!) }));
    outs.forEach((list, p) => list.forEach((ans) => cands.push({ promptId: prompts[p]!.id, author: names[i]!, answer: ans, scores: {} })));
  }
  // 2. judge the others' candidates (absolute, one candidate at a time; batched)
  for (const [i, m] of members.entries()) {
    const mine = cands.filter((c) => c.author !== names[i]);
    const scores = a["oracle-judge"]
      ? mine.map((c) => {
          const it = byId.get(c.promptId)!;
          return oracleScores(it.family, it.answer, c.answer);
        })
      : (
          await time("judge", names[i]!, () =>
            judgeOnce(
              m,
              mine.map((c) => ({ prompt: promptById.get(c.promptId)!, answer: c.answer })),
            ),
          )
        ).map((j) => (j as { likert: LikertScores }).likert);
    mine.forEach((c, j) => (c.scores[names[i]!] = scores[j]!));
  }
  // judge quality: mean normalised score each judge gives correct / wrong candidates, per family
  const norm = (sc: Candidate["scores"][string]) => Object.values(sc).reduce((x, y) => x + (y - 1) / 4, 0) / 5;
  for (const n of names) {
    const row: string[] = [];
    for (const f of FAMILIES) {
      let cs = 0,
        cn = 0,
        ws = 0,
        wn = 0;
      for (const c of cands) {
        const sc = c.scores[n];
        const item = byId.get(c.promptId)!;
        if (!sc || item.family !== f) continue;
        if (classifyAnswer(f, item.answer, c.answer) === "correct") {
          cs += norm(sc);
          cn++;
        } else {
          ws += norm(sc);
          wn++;
        }
      }
      row.push(`${f} ${(cs / Math.max(1, cn)).toFixed(2)}/${(ws / Math.max(1, wn)).toFixed(2)}`);
    }
    console.log(`  judge ${n.padEnd(10)} mean score correct/other: ${row.join("  ")}`);
  }
  // 3. vote, as the coordinator does: one tally per prompt of every author's batch and every judge's verdict
  const voting = { ...D.overrides.voting, minChosen: Number(a["min-chosen"]), minMargin: Number(a["min-gap"]) };
  const pairs = votes(cands, prompts, it, voting);
  const fam: Record<string, number> = {};
  const famOk: Record<string, number> = {};
  let chosenOk = 0;
  for (const p of pairs) {
    const item = byId.get(p.promptId)!;
    const ok = classifyAnswer(item.family, item.answer, p.chosen.text) === "correct";
    fam[item.family] = (fam[item.family] ?? 0) + 1;
    famOk[item.family] = (famOk[item.family] ?? 0) + (ok ? 1 : 0);
    if (ok) chosenOk++;
  }
  const candOk = cands.filter((c) => {
    const it2 = byId.get(c.promptId)!;
    return classifyAnswer(it2.family, it2.answer, c.answer) === "correct";
  }).length;
  console.log(
    `iter ${it}: ${cands.length} candidates (${((100 * candOk) / cands.length).toFixed(0)}% correct), ${pairs.length}/${N} pairs kept, chosen correct ${pairs.length ? ((100 * chosenOk) / pairs.length).toFixed(0) : 0}%, per family (chosen correct/kept) ${Object.keys(
      fam,
    )
      .map((f) => `${f} ${famOk[f]}/${fam[f]}`)
      .join(", ")}, chosen by ${JSON.stringify(Object.fromEntries(names.map((n) => [n, pairs.filter((p) => p.chosen.author === n).length])))}`,
  );
  const prefs: PreferenceInput[] = pairs.map((p) => ({ prompt: promptById.get(p.promptId)!, chosen: p.chosen.text, rejected: p.rejected.text }));
  // 4. train, 5. evaluate
  for (const [i, m] of members.entries()) {
    const r = await time("train", names[i]!, () =>
      m.train(prefs, {
        ...simpo,
        learningRate: learningRateOf({ learningRate: simpo.learningRate, learningRateDecay: Number(a["lr-decay"]) }, it),
        seed: hashSeed("pop-train", it, names[i]!),
      }),
    );
    console.log(
      `  ${names[i]} SimPO: ${r.steps} steps, loss ${fmt(r.lossFirst)} -> ${fmt(r.lossLast)}, margin ${fmt(r.marginBefore)} -> ${fmt(r.marginAfter)}`,
    );
    evals[i]!.push(await time("evaluate", names[i]!, () => m.evaluate()));
  }
}

console.log(`\nmember      iter  ${FAMILIES.map((f) => f.padStart(9)).join("")}   average`);
for (const [i, n] of names.entries()) {
  evals[i]!.forEach((e, it) =>
    console.log(`${n.padEnd(11)} ${String(it).padStart(4)}  ${FAMILIES.map((f) => fmt(e.suites[f]!).padStart(9)).join("")}   ${e.average.toFixed(3)}`),
  );
}
const panel = evals[0]!.map((_, it) => evals.reduce((s, e) => s + e[it]!.average, 0) / evals.length);
console.log(`panel average by iteration: ${panel.map((x) => x.toFixed(3)).join(" -> ")}  (delta ${(panel[panel.length - 1]! - panel[0]!).toFixed(3)})`);
console.log("\nms per member per iteration (mean):");
for (const [ph, per] of Object.entries(phase)) {
  console.log(
    `  ${ph.padEnd(9)} ${names.map((n) => `${n} ${((per[n] ?? []).reduce((x, y) => x + y, 0) / Math.max(1, (per[n] ?? []).length)).toFixed(0)}`).join("  ")}`,
  );
}
const wallMs = performance.now() - t00;
console.log(`total wall ${(wallMs / 1000).toFixed(1)} s (one process, sequential)`);
if (a.json) writeFileSync(a.json, JSON.stringify({ iterations: I, prompts: N, k: K, members: names, phases: phase, cpuPhases: cpuPhase, wallMs }, null, 2));
for (const m of members) await m.dispose();

/** The pairs the coordinator's voting (coordinator/voting.ts) makes of the simulated candidates and scores. */
function votes(cands: Candidate[], prompts: PromptInput[], iteration: number, voting: typeof DEMO_DEFAULTS.overrides.voting) {
  const v = PROTOCOL_VERSION;
  const experiment = "simulation";
  const byPrompt = new Map<string, Candidate[]>();
  for (const c of cands) (byPrompt.get(c.promptId) ?? byPrompt.set(c.promptId, []).get(c.promptId)!).push(c);
  return prompts.flatMap((p) => {
    const tally = newTally({ v, type: "prompt", experiment, iteration, promptId: p.id, question: p.question, images: [], createdAt: 0 });
    const list = byPrompt.get(p.id) ?? [];
    for (const author of new Set(list.map((c) => c.author))) {
      const mine = list.filter((c) => c.author === author);
      const id = (i: number) => `${p.id}:${author}:${i}`;
      addToTally(tally, {
        v,
        type: "candidates",
        experiment,
        iteration,
        promptId: p.id,
        question: p.question,
        images: [],
        author,
        modelVersion: "sim",
        sampling: { k: mine.length, temperature: 0, seed: 0 },
        candidates: mine.map((c, i) => ({ candidateId: id(i), text: c.answer })),
        createdAt: 0,
      });
      for (const judge of new Set(mine.flatMap((c) => Object.keys(c.scores)))) {
        addToTally(tally, {
          v,
          type: "verdict",
          experiment,
          iteration,
          promptId: p.id,
          judge,
          authors: [author],
          modelVersion: "sim",
          scores: mine.map((c, i) => ({ candidateId: id(i), likert: c.scores[judge]! })),
          createdAt: 0,
        });
      }
    }
    return votePrompt(tally, voting, { now: 0 });
  });
}
