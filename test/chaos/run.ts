/** `npm run chaos`: randomized fault runs (test/chaos/chaos.ts) and the table of what survived. */
import { FAULTS, runOnce, type Fault } from "./chaos.ts";
import { Flags, UsageError } from "../../deploy/cli/args.ts";
import { ResultsRun, commandLine } from "../../deploy/observe/results/write.ts";

const help = `npm run chaos -- [options]

Randomized fault runs: each run starts a small panel (three random-weight tiny members, two
iterations), injects one fault at a seeded moment of iteration 1 and checks that the experiment
finished, every prompt has exactly one pair per iteration, nothing refused as a stale leader's
was counted, no verdict is stored twice, every pair is what a vote of the stored messages gives
(for the judges it counted) and every member on an iteration's roll trained on it
once. Each run measures the time to take over (the fault to the coordinator lease's next
takeover) and the time lost (iteration 1's cycle minus the undisturbed iteration 2's). Prints a
table (runs, survived, median time to take over, median time lost); writes a results file.

  coordinator  SIGKILL the coordinator, restart it 1-3 s later
  actor        SIGKILL one actor, restart it 1-3 s later
  node         SIGKILL the node leading the candidates stream of a 3-node cluster, restart it 5-20 s later
  link         cut site b's link to the hub for 10-30 s (hub + two sites, credentials on)
  site-loss    three sites (pop site --layout cluster), the coordinator's leader at a, a standby at b:
               SIGKILL site a whole (its node, its peer, the leader); restart the node and the peer
               20-40 s later (the peer leaves by heartbeat and rejoins, catching up)
  site-cut     the same three sites: cut site a's routes and its processes' links to b and c for
               20-60 s (its leader cannot renew and stops; the standby takes over)
  leader-loss  the same three sites: SIGKILL the leading coordinator only

A run takes 1-4 minutes (the three-site faults the longest), so --runs 20 of every fault is hours.

  --runs N         runs per fault                                   default: 3
  --seed S         seed of the first run (run i uses S + i)         default: from the clock
  --faults LIST    comma-separated faults                           default: ${FAULTS.join(",")}
  --results DIR    where the results file goes (none: no file)      default: docs/results

Replay one run: npm run chaos -- --faults F --seed S --runs 1 (every run prints its seed).`;

const say = (line: string) => process.stderr.write(`[chaos] ${line}\n`);

/** One fault's line of the table. */
interface Row {
  fault: Fault;
  runs: number;
  survived: number;
  broke: string[];
  takeoverMs: number[];
  lostMs: number[];
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const seconds = (ms: number | undefined) => (ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`);
/** "(of n)" when a measure exists for only some of the runs. */
const count = (xs: number[], runs: number) => (xs.length && xs.length < runs ? ` (${xs.length} of ${runs})` : "");

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(help + "\n");
    return;
  }
  const flags = new Flags(process.argv.slice(2), help);
  const runs = flags.int("runs", { min: 1 }) ?? 3;
  const base = flags.int("seed", { min: 0 }) ?? Date.now() % 100_000;
  const faults = (flags.string("faults") ?? FAULTS.join(",")).split(",").map((f) => f.trim()) as Fault[];
  const resultsFile = new ResultsRun("chaos", commandLine("chaos", process.argv.slice(2)), flags.string("results"));
  flags.rejectUnknown();
  for (const f of faults) if (!FAULTS.includes(f)) throw new UsageError(`unknown fault '${f}' (faults: ${FAULTS.join(", ")})`, help);
  const table: Row[] = [];
  for (const fault of faults) {
    const row: Row = { fault, runs: 0, survived: 0, broke: [], takeoverMs: [], lostMs: [] };
    for (let i = 0; i < runs; i++) {
      const seed = base + i;
      say(`${fault} run ${i + 1}/${runs}, seed ${seed} (replay: npm run chaos -- --faults ${fault} --seed ${seed} --runs 1)`);
      const result = await runOnce(fault, seed);
      row.runs++;
      if (result.broke.length === 0) row.survived++;
      else row.broke.push(`seed ${seed}: ${result.broke.join("; ")}`);
      if (result.takeoverMs !== undefined) row.takeoverMs.push(result.takeoverMs);
      if (result.lostMs !== undefined) row.lostMs.push(result.lostMs);
      const measures = `takeover ${seconds(result.takeoverMs)}, lost ${seconds(result.lostMs)}`;
      say(
        `  ${result.notes[0] ?? ""} -> ${result.broke.length ? `BROKE: ${result.broke.join("; ")}` : "survived"} (${(result.ms / 1000).toFixed(0)} s; ${measures})`,
      );
      // The rest: stale messages refused (fine), and when it broke the logs and where they are kept.
      for (const n of result.notes.slice(1)) say(n);
    }
    table.push(row);
  }
  const markdown = [
    "| fault | runs | survived | median time to take over | median time lost | what broke |",
    "|---|---|---|---|---|---|",
    ...table.map(
      (t) =>
        `| ${t.fault} | ${t.runs} | ${t.survived} | ${seconds(median(t.takeoverMs))}${count(t.takeoverMs, t.runs)} | ${seconds(median(t.lostMs))}${count(t.lostMs, t.runs)} | ${t.broke.join("<br>") || "-"} |`,
    ),
  ].join("\n");
  process.stdout.write("\n" + markdown + "\n");
  resultsFile.write({
    summary:
      "Randomized fault runs (test/chaos/chaos.ts): each run injects one fault at a seeded moment and checks every prompt's pair exactly once, nothing refused as a stale leader's counted, no verdict stored twice, every pair what a vote of the stored messages gives for the judges it counted, and every member on an iteration's roll trained on it once. Time to take over: the fault to the coordinator lease's next takeover (from the lease record). Time lost: iteration 1's cycle (open to the next open) minus the undisturbed iteration 2's (open to experiment_done); negative when iteration 2 happened to be slower.",
    settings: { runs, "first seed": base, faults: faults.join(",") },
    sections: [{ heading: "What survived", markdown }],
  });
  if (table.some((t) => t.survived < t.runs)) process.exitCode = 1;
}

main().catch((error) => {
  if (error instanceof UsageError) {
    process.stderr.write(`npm run chaos: ${error.message}\n(npm run chaos -- --help says how)\n`);
    process.exit(2);
  }
  process.stderr.write(`chaos failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
