/** `npm run chaos`: randomized fault runs (test/chaos/chaos.ts) and the table of what survived. */
import { parseArgs } from "node:util";
import { FAULTS, runOnce, type Fault } from "./chaos.ts";
import { ResultsRun, commandLine } from "../../deploy/observe/results/write.ts";

const { values: a } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seed: { type: "string", default: String(Date.now() % 100_000) },
    faults: { type: "string", default: FAULTS.join(",") },
    // where the results file goes (none: no file); default docs/results
    results: { type: "string" },
  },
});
const say = (line: string) => process.stderr.write(`[chaos] ${line}\n`);

async function main(): Promise<void> {
  const resultsFile = new ResultsRun("chaos", commandLine("chaos", process.argv.slice(2)), a.results);
  const runs = Number(a.runs);
  const base = Number(a.seed);
  const faults = a.faults.split(",").map((f) => f.trim()) as Fault[];
  for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault '${f}' (faults: ${FAULTS.join(", ")})`);
  const table: { fault: Fault; runs: number; survived: number; broke: string[] }[] = [];
  for (const fault of faults) {
    const row = { fault, runs: 0, survived: 0, broke: [] as string[] };
    for (let i = 0; i < runs; i++) {
      const seed = base + i;
      say(`${fault} run ${i + 1}/${runs}, seed ${seed} (replay: npm run chaos -- --faults ${fault} --seed ${seed} --runs 1)`);
      const result = await runOnce(fault, seed);
      row.runs++;
      if (result.broke.length === 0) row.survived++;
      else row.broke.push(`seed ${seed}: ${result.broke.join("; ")}`);
      say(`  ${result.notes[0] ?? ""} -> ${result.broke.length ? `BROKE: ${result.broke.join("; ")}` : "survived"} (${(result.ms / 1000).toFixed(0)} s)`);
      if (result.broke.length) for (const n of result.notes.slice(1)) say(n);
    }
    table.push(row);
  }
  const markdown = [
    "| fault | runs | survived | what broke |",
    "|---|---|---|---|",
    ...table.map((t) => `| ${t.fault} | ${t.runs} | ${t.survived} | ${t.broke.join("<br>") || "-"} |`),
  ].join("\n");
  process.stdout.write("\n" + markdown + "\n");
  resultsFile.write({
    summary:
      "Randomized fault runs (test/chaos/chaos.ts): each run injects one fault at a seeded moment and checks every prompt's pair exactly once, no verdict stored twice and every member trained once per iteration.",
    settings: { runs, "first seed": base, faults: faults.join(",") },
    sections: [{ heading: "What survived", markdown }],
  });
  if (table.some((t) => t.survived < t.runs)) process.exitCode = 1;
}

main().catch((error) => {
  process.stderr.write(`chaos failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
