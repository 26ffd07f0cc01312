/**
 * `npm run demo:seeds [-- --seeds 7,11,23 --out DIR ...demo options]`: the demo once per prompt-pool
 * seed, one after another, then a table of the panel's gain per seed with the mean and spread, so a
 * gain is shown to be the method's and not one seed's. Other options go to every demo run.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Flags, UsageError } from "../cli/args.ts";
import { exitWithUsage, scriptFlags } from "../cli/script-flags.ts";
import { demoHelp, runDemo } from "./demo.ts";
import { formatSeeds, seedResult, type SeedResult } from "../observe/report/seeds.ts";
import { DEMO_DEFAULTS } from "./defaults.ts";
import { NO_RESULTS, ResultsRun, commandLine, fence } from "../observe/results/write.ts";

/** The seeds the README's table reports (the demo's settings were chosen on others). */
export const REPORTED_SEEDS = [1, 2, 3, 4, 5];

const help = `npm run demo:seeds [-- options]

Runs the demo once per prompt-pool seed and prints the panel's gain per seed, the mean and the
spread. Writes each run under --out/seed-<S>/ and the summary to --out/seeds.json.

  --seeds A,B,C    pool seeds                      default: ${REPORTED_SEEDS.join(",")}
  --out DIR        output directory                default: runs/seeds-<time>
  --results DIR    where the results file goes     default: docs/results
                   (none: no file; the runs of each seed write none)
  any other option is passed to every demo run (see pop demo --help)

${demoHelp}`;

async function main(argv: string[]): Promise<void> {
  const own = scriptFlags("demo:seeds", help, { argv });
  const seeds = (own.string("seeds") ?? REPORTED_SEEDS.join(",")).split(",").map((s) => Number(s.trim()));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new UsageError(`--seeds must be a comma-separated list of whole numbers`, help);
  if (own.has("pool-seed")) throw new UsageError("--pool-seed is set per run; use --seeds", help);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const out = resolve(own.string("out") ?? join("runs", `seeds-${stamp}`));
  // The options left over go to each demo run.
  const resultsFile = new ResultsRun("demo-seeds", commandLine("demo:seeds", argv), own.string("results"));
  const passOn = own.rest(["seeds", "out", "results"]);
  own.rejectUnknown();
  mkdirSync(out, { recursive: true });
  const results: SeedResult[] = [];
  for (const [i, seed] of seeds.entries()) {
    process.stdout.write(`\n=== pool seed ${seed} (${i + 1} of ${seeds.length}) ===\n`);
    const t0 = Date.now();
    const report = await runDemo(new Flags([...passOn, "--pool-seed", String(seed), "--out", join(out, `seed-${seed}`), "--results", NO_RESULTS], demoHelp));
    results.push(seedResult(seed, report, (Date.now() - t0) / 60_000));
    writeFileSync(join(out, "seeds.json"), JSON.stringify({ settings: { ...DEMO_DEFAULTS, passedOn: passOn }, results }, null, 2));
  }
  process.stdout.write(`\n${formatSeeds(results)}\nwrote ${join(out, "seeds.json")}\n`);
  resultsFile.write({
    summary: `The demo once per prompt-pool seed (${seeds.join(", ")}), one run after another: the panel's gain per seed.`,
    settings: { seeds: seeds.join(","), "passed to each demo run": passOn.join(" ") || "(nothing: the demo's defaults)", ...demoDefaults() },
    sections: [{ heading: "Gain per seed (the last column is each run's minutes)", markdown: fence(formatSeeds(results)) }],
  });
}

/** The demo's defaults as results-file settings. */
function demoDefaults(): Record<string, string | number> {
  const { overrides, ...plain } = DEMO_DEFAULTS;
  return { ...plain, voting: JSON.stringify(overrides.voting), training: JSON.stringify(overrides.training) };
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) exitWithUsage("demo:seeds", e);
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
