/**
 * `npm run demo:hostile [-- --mode invert --rules mean,median --prompts N ...demo options]`: the
 * main job with a hostile member. Runs the all-honest shipped panel once (the paper's mean), then
 * the panel with a fourth member judging adversarially (`pop demo --hostile MODE`) once per voting
 * rule, one run after another, and writes per rule the honest members' gains, their mean against
 * the all-honest panel's and the pair precision per iteration to docs/results/hostile-<date>.md.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Flags, UsageError } from "../cli/args.ts";
import { exitWithUsage, scriptFlags } from "../cli/script-flags.ts";
import { formatDuration, timeToGo } from "../cli/progress.ts";
import { demoHelp, runDemo } from "./demo.ts";
import { DEMO_DEFAULTS } from "./defaults.ts";
import { HOSTILE_CHECKPOINT_OF, HOSTILE_PEER, hostileMode } from "./hostile-member.ts";
import { armResult, bestArm, formatGains, formatPrecisionByArm, gainRatio, type ArmResult } from "./hostile-arms.ts";
import { NO_RESULTS, ResultsRun, commandLine } from "../observe/results/write.ts";
import { AGGREGATES } from "../../protocol/mod.ts";
import { HOSTILE_JUDGES } from "../../actors/models/hostile.ts";
import { PRECISION_NOTE } from "../observe/precision/format.ts";

const help = `npm run demo:hostile [-- options]

The main job with a hostile member: the all-honest shipped panel once (voting rule mean), then the
panel plus '${HOSTILE_PEER}', a fourth member that judges adversarially (pop demo --hostile), once per
voting rule. Prints and writes per rule the honest members' gain, their mean as a share of the
all-honest panel's, and the pair precision per iteration. Each run goes to --out/<arm>/.

  --mode MODE      the hostile member's judging: ${HOSTILE_JUDGES.join(", ")}    default: invert
  --rules A,B      voting rules to run with it                    default: ${AGGREGATES.join(",")}
  --out DIR        output directory                               default: runs/hostile-<time>
  --results DIR    where the results file goes                    default: docs/results
                   (none: no file; the demo runs themselves write none)
  any other option is passed to every demo run (see pop demo --help), e.g. --prompts N

${demoHelp}`;

async function main(argv: string[]): Promise<void> {
  const own = scriptFlags("demo:hostile", help, { argv });
  const mode = hostileMode(own.string("mode") ?? "invert", help)!;
  const rules = (own.string("rules") ?? AGGREGATES.join(",")).split(",").map((r) => r.trim());
  for (const r of rules)
    if (!(AGGREGATES as readonly string[]).includes(r)) throw new UsageError(`--rules: '${r}' is not a voting rule (${AGGREGATES.join(", ")})`, help);
  for (const name of ["hostile", "aggregate"]) if (own.has(name)) throw new UsageError(`--${name} is set per run by this script`, help);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const out = resolve(own.string("out") ?? join("runs", `hostile-${stamp}`));
  const resultsFile = new ResultsRun("hostile", commandLine("demo:hostile", argv), own.string("results"));
  const passOn = own.rest(["mode", "rules", "out", "results"]);
  own.rejectUnknown();
  mkdirSync(out, { recursive: true });

  const arms: { name: string; dir: string; rule: string; args: string[] }[] = [
    { name: "all honest", dir: "honest", rule: "mean", args: ["--aggregate", "mean"] },
    ...rules.map((rule) => ({ name: `${HOSTILE_PEER} (${mode})`, dir: `${mode}-${rule}`, rule, args: ["--hostile", mode, "--aggregate", rule] })),
  ];
  const t0 = Date.now();
  const results: ArmResult[] = [];
  for (const [i, arm] of arms.entries()) {
    const elapsed = Date.now() - t0;
    // Runs with the hostile member have one member more to train, so the pace is read from those done.
    const eta = i > 0 ? `; ${formatDuration(elapsed)} so far, ${timeToGo((elapsed / i) * (arms.length - i))}` : "";
    process.stdout.write(`\n=== demo:hostile run ${i + 1} of ${arms.length}: ${arm.name}, voting rule ${arm.rule}${eta} ===\n`);
    const started = Date.now();
    const report = await runDemo(new Flags([...passOn, ...arm.args, "--out", join(out, arm.dir), "--results", NO_RESULTS], demoHelp));
    results.push(armResult(arm.name, arm.rule, report, (Date.now() - started) / 60_000));
    writeFileSync(join(out, "hostile.json"), JSON.stringify({ mode, rules, passedOn: passOn, results }, null, 2));
  }
  const baseline = results[0]!;
  const best = bestArm(results, baseline);
  const gains = formatGains(results, baseline);
  const precision = formatPrecisionByArm(results);
  const verdict = best
    ? `Best rule with ${HOSTILE_PEER} judging ${mode}: ${best.rule}, the honest members' mean gain ${(best.honest.meanGain * 100).toFixed(1)} points, ${((gainRatio(best, baseline) ?? 0) * 100).toFixed(0)}% of the all-honest panel's ${(baseline.honest.meanGain * 100).toFixed(1)}.`
    : "";
  process.stdout.write(`\n${gains}\n\n${precision}\n\n${verdict}\nwrote ${join(out, "hostile.json")} (the runs are in ${out})\n`);
  // Said in the header: a run shortened to fit the time is not the demo's default size.
  const prompts = own.string("prompts");
  const size = prompts ? ` Every run with ${prompts} prompts per iteration (the demo's default: ${DEMO_DEFAULTS.promptsPerIteration}).` : "";
  resultsFile.write({
    summary: `The demo with a hostile member: the all-honest shipped panel once, then the panel plus ${HOSTILE_PEER} judging as a hostile judge (${mode}) once per voting rule (${rules.join(", ")}), one run after another.${size} ${verdict}`,
    settings: {
      "hostile member": `${HOSTILE_PEER}, judging ${mode}, answering with ${HOSTILE_CHECKPOINT_OF}'s shipped checkpoint (deploy/demo/hostile-member.ts says why)`,
      rules: rules.join(", "),
      "passed to each demo run": passOn.join(" ") || "(nothing: the demo's defaults)",
      iterations: DEMO_DEFAULTS.iterations,
      "prompts per iteration (default)": DEMO_DEFAULTS.promptsPerIteration,
      voting: JSON.stringify({ ...DEMO_DEFAULTS.overrides.voting, aggregate: "per run" }),
      training: JSON.stringify(DEMO_DEFAULTS.overrides.training),
    },
    sections: [
      {
        heading: "Honest members' gain (points, iteration 0 -> last)",
        markdown: `${gains}\n\nThe hostile member's own scores are left out; "of the all-honest mean" is the row's honest mean over the all-honest panel's.`,
      },
      { heading: "Pair precision per iteration (all families)", markdown: `${precision}\n\n${PRECISION_NOTE}` },
    ],
  });
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof UsageError) exitWithUsage("demo:hostile", e);
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
