/**
 * Judge quality of checkpoints: mean normalised score (mean of five criteria, (s-1)/4) that each
 * member gives to synthetic candidates of each category, per family, on benchmark images.
 *   npx tsx deploy/bench/tiny/judge-report.ts [file.bin ...]
 */
import { TinyBackend } from "../../../actors/models/tiny/backend.ts";
import { PANEL } from "../../../actors/models/tiny/pretrain.ts";
import { FAMILIES, benchmarkSuite, itemPrompt } from "../../../actors/models/tiny/world.ts";
import { CATEGORIES, classifyAnswer, synthCandidate } from "../../../actors/models/tiny/criteria.ts";
import { makeRng } from "../../../actors/random/rng.ts";
import { CRITERIA } from "../../../protocol/mod.ts";

const files = process.argv.slice(2).length ? process.argv.slice(2) : PANEL.map((m) => `actors/models/tiny/checkpoints/${m.name}.bin`);
for (const f of files) {
  const be = await TinyBackend.load(f);
  console.log(`${be.metadata.name ?? f}: mean normalised score by family x category`);
  console.log(`  ${"family".padEnd(10)}${CATEGORIES.map((c) => c.padStart(10)).join("")}`);
  for (const fam of FAMILIES) {
    const items = benchmarkSuite(fam, 40, 99);
    const rng = makeRng(5);
    const row: string[] = [];
    for (const cat of CATEGORIES) {
      const cands = items.map((it) => ({ it, a: synthCandidate(fam, it.answer, cat, rng) })).filter((x) => classifyAnswer(fam, x.it.answer, x.a) === cat);
      if (!cands.length) {
        row.push("-".padStart(10));
        continue;
      }
      const s = await be.scores(cands.map((x) => ({ prompt: itemPrompt(x.it), answer: x.a })));
      const m = s.reduce((a, sc) => a + CRITERIA.reduce((b, c) => b + (sc[c] - 1) / 4, 0) / 5, 0) / s.length;
      row.push(m.toFixed(2).padStart(10));
    }
    console.log(`  ${fam.padEnd(10)}${row.join("")}`);
  }
  await be.dispose();
}
