/** Print the benchmark table of checkpoints: `npm run model:table [-- file.bin ...]` (default: the shipped panel). */
import { TinyBackend } from "../../../actors/models/tiny/backend.ts";
import { PANEL } from "../../../actors/models/tiny/pretrain.ts";
import { FAMILIES } from "../../../actors/models/tiny/world.ts";
import { scriptFlags } from "../../cli/script-flags.ts";

const HELP = `npm run model:table [-- FILE.bin ...]

The six suites' scores (greedy exact match, 100 items each) of tiny checkpoints, one row each;
without files, the shipped panel's.`;
const flags = scriptFlags("model:table", HELP, { positionals: true });
flags.rejectUnknown();
const files = flags.positionals().length ? flags.positionals() : PANEL.map((m) => `actors/models/tiny/checkpoints/${m.name}.bin`);
console.log(`${"checkpoint".padEnd(12)}${FAMILIES.map((f) => f.padStart(10)).join("")}   average   version            gaps`);
const avgs: number[] = [];
for (const f of files) {
  const be = await TinyBackend.load(f);
  const ev = await be.evaluate();
  const name = String(be.metadata.name ?? f);
  avgs.push(ev.average);
  console.log(
    `${name.padEnd(12)}${FAMILIES.map((x) => ev.suites[x]!.toFixed(2).padStart(10)).join("")}   ${ev.average.toFixed(3)}     ${(await be.info()).version}   ${((be.metadata.gaps as string[] | undefined) ?? []).join(",")}`,
  );
  await be.dispose();
}
console.log(
  `panel mean ${(avgs.reduce((a, b) => a + b, 0) / avgs.length).toFixed(3)} (${files.length} checkpoints, ${100} items per suite, greedy exact match)`,
);
