/** `npm run bench:model`: timings of the tiny model on this machine (wasm backend, one thread). */
import { initTf, tf } from "../../../actors/models/tiny/tf.ts";
import { TinyVlm, DEFAULT_CONFIG } from "../../../actors/models/tiny/model.ts";
import { ceStep, judgeExample, trainSimpo } from "../../../actors/models/tiny/train.ts";
import { trainItem, renderScene, poolItem } from "../../../actors/models/tiny/world.ts";
import { scriptFlags } from "../../cli/script-flags.ts";

scriptFlags(
  "bench:model",
  `npm run bench:model

Times the tiny model on this machine (wasm backend, one thread): a CE step, a SimPO step,
sampling and judging. Takes no options.`,
).rejectUnknown();

const backend = await initTf();
const model = TinyVlm.init(1, DEFAULT_CONFIG);
console.log(`backend ${backend}, ${model.parameterCount} parameters, vocab ${DEFAULT_CONFIG.vocab.length}`);
const time = (label: string, reps: number, f: () => void) => {
  f();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  const ms = (performance.now() - t0) / reps;
  console.log(`${label}: ${ms.toFixed(1)} ms`);
  return ms;
};
const items = Array.from({ length: 64 }, (_, i) => trainItem(5, i));
const ans = items.slice(0, 32).map((it) => ({ image: renderScene(it.scene), question: it.question, answer: it.answer }));
const judges = items.slice(32, 64).map((it) => judgeExample(it, 5));
const opt = tf.train.adam(1e-3);
time("CE step, batch 32 answers", 5, () => ceStep(model, opt, ans, []));
time("CE step, batch 32 answers + 24 judge candidates (x5 criteria), the pretraining step", 5, () => ceStep(model, opt, ans, judges.slice(0, 24)));
const pairs = ans.map((a, i) => ({ image: a.image, question: a.question, chosen: a.answer, rejected: ans[(i + 1) % 32]!.answer }));
for (const judgeAnchor of [0, 1]) {
  const r = trainSimpo(model, pairs, { epochs: 5, batchSize: 32, learningRate: 1e-4, judgeAnchor });
  console.log(
    `SimPO step, batch 32 pairs (64 sequences), judge anchor ${judgeAnchor ? "on (default)" : "off"}: ${(r.ms / r.steps).toFixed(1)} ms (incl. margin before/after over 5 steps)`,
  );
}
const prompts = Array.from({ length: 100 }, (_, i) => {
  const it = poolItem(3, i);
  return { image: renderScene(it.scene), question: it.question, key: it.id };
});
time("sample k=4 answers for N=100 prompts (400 answers, temperature 1)", 3, () => model.sample(prompts, 4, 1, 1));
time("greedy answers for N=100 prompts", 3, () => model.sample(prompts, 1, 0, 1));
const one = [{ image: ans[0]!.image, question: ans[0]!.question, answer: ans[0]!.answer }];
time("judge one candidate on all five criteria", 10, () => model.judgeScores(one));
const many = Array.from({ length: 512 }, (_, i) => ({ image: ans[i % 32]!.image, question: ans[i % 32]!.question, answer: ans[(i * 7) % 32]!.answer }));
const ms = time("judge 512 candidates x 5 criteria (batched)", 2, () => model.judgeScores(many));
console.log(`  -> ${((512 * 1000) / ms).toFixed(0)} candidates/s (${((5 * 512 * 1000) / ms).toFixed(0)} criterion scores/s)`);
time("length-averaged log-probs of 128 answers", 5, () => model.answerLogProbs(many.slice(0, 128)));
