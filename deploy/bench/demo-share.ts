/**
 * The plane's own share of the main job (`npm run bench:demo-share`): runs the same work twice,
 * one after the other with the same settings — in one process without NATS (simulate-pop.ts: each
 * member's answering, judging, training and evaluation timed alone) and as the demo (the
 * coordinator and the peers as processes over JetStream) — and prints per iteration and phase the
 * demo's wall seconds against the compute bound of the same model work on this machine's cores:
 * max(sum over members / cores, the slowest member), since each member's model runs on one thread.
 * While the demo runs it samples /proc, so the table also says how many cores the demo's processes
 * (and the whole machine, other users included) kept busy during its answering and judging.
 *
 *   npm run bench:demo-share -- [--iterations 1] [--prompts 2000] [--k 4] [--keep DIR]
 *       [--log-level debug] [--out FILE] [--results DIR]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { scriptOptions } from "../cli/script-flags.ts";
import { DEMO_DEFAULTS } from "../demo/defaults.ts";
import { loadReport } from "../observe/report/load.ts";
import { ResultsRun, commandLine, fence } from "../observe/results/write.ts";
import { CpuSampler } from "./demo-share/cpu.ts";

const HELP = `npm run bench:demo-share [-- options]

The demo against the same work in one process (simulate-pop), per iteration and phase.

  --iterations N   PoP iterations of both runs                       default: 1
  --prompts N      prompts per iteration                             default: ${DEMO_DEFAULTS.promptsPerIteration}
  --k N            candidates per prompt and member                  default: ${DEMO_DEFAULTS.k}
  --keep DIR       keep the demo's output (logs, report.json) here  default: a temporary folder, removed
  --log-level L    the demo processes' log level (debug: every model call's size and time)
  --out FILE       also write the rows as JSON
  --results DIR    where the markdown results file goes (none: no file)  default: docs/results`;
const a = scriptOptions("bench:demo-share", HELP, {
  iterations: "1",
  prompts: String(DEMO_DEFAULTS.promptsPerIteration),
  k: String(DEMO_DEFAULTS.k),
  keep: undefined,
  "log-level": undefined,
  out: undefined,
  results: undefined,
});
const say = (line: string) => process.stderr.write(`[bench:demo-share] ${line}\n`);
const HERE = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CORES = cpus().length;
const load = () => loadavg()[0]!.toFixed(2);

/** Runs a script of ours with tsx; resolves with its wall time once it exits 0. */
function run(script: string, args: string[], env: Record<string, string> = {}, onStart?: (pid: number) => void): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", HERE(script), ...args], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, ...env },
    });
    if (child.pid) onStart?.(child.pid);
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(Date.now() - t0) : reject(new Error(`${script} exited with ${code}`))));
  });
}

interface SimOut {
  members: string[];
  /** ms per member per iteration; evaluate has iteration 0 first. */
  phases: Record<"generate" | "judge" | "train" | "evaluate", Record<string, number[]>>;
  /** The same calls' CPU ms. */
  cpuPhases: SimOut["phases"];
  wallMs: number;
}

/** A phase's compute bound: every member's work spread over the cores, but no member faster than its own one thread. */
const bound = (perMember: number[]) => Math.max(perMember.reduce((x, y) => x + y, 0) / CORES, ...perMember);

const settings = ["--iterations", a.iterations!, "--k", a.k!];
const work = mkdtempSync(join(tmpdir(), "pop-demo-share-"));
const demoOut = a.keep ?? join(work, "demo");
const resultsFile = new ResultsRun("bench-demo-share", commandLine("bench:demo-share", process.argv.slice(2)), a.results);
try {
  const loadBefore = load();
  say(`one process: simulate-pop ${settings.join(" ")} --n ${a.prompts} (load ${loadBefore})`);
  const simJson = join(work, "sim.json");
  await run("./simulate-pop.ts", [...settings, "--n", a.prompts!, "--json", simJson]);
  const sim = JSON.parse(readFileSync(simJson, "utf8")) as SimOut;
  const loadBetween = load();
  say(`the demo, same settings (load ${loadBetween})`);
  let sampler: CpuSampler | undefined;
  const demoArgs = ["demo", ...settings, "--prompts", a.prompts!, "--out", demoOut, "--results", "none"];
  const demoWall = await run("../cli/cli.ts", demoArgs, a["log-level"] ? { POP_LOG_LEVEL: a["log-level"] } : {}, (pid) => (sampler = new CpuSampler(pid)));
  sampler?.stop();
  const loadAfter = load();
  const { timeline: t } = loadReport(join(demoOut, "report.json"));
  const timeline = { totalMs: (t.endedAt ?? 0) - (t.startedAt ?? 0), iterations: t.iterations };

  const of = (phase: keyof SimOut["phases"], i: number) => sim.members.map((m) => sim.phases[phase][m]?.[i] ?? 0);
  const cpuOf = (phase: keyof SimOut["phases"], i: number) => sim.members.reduce((s, m) => s + (sim.cpuPhases[phase][m]?.[i] ?? 0), 0);
  const rows: { iteration: number; phase: string; demoS: number; oneProcessS: number; boundS: number; ratio: number }[] = [];
  const add = (iteration: number, phase: string, demoMs: number | undefined, perMember: number[]) => {
    if (demoMs === undefined) return;
    const b = bound(perMember);
    rows.push({ iteration, phase, demoS: demoMs / 1000, oneProcessS: perMember.reduce((x, y) => x + y, 0) / 1000, boundS: b / 1000, ratio: demoMs / b });
  };
  const cpuLines: string[] = [];
  for (const t of timeline.iterations) {
    const n = t.iteration;
    if (n === 0) {
      add(0, "evaluation", t.evaluation, of("evaluate", 0));
      continue;
    }
    add(
      n,
      "answer+judge",
      t.collecting,
      of("generate", n - 1).map((g, i) => g + of("judge", n - 1)[i]!),
    );
    add(n, "training", t.training, of("train", n - 1));
    add(n, "evaluation", t.evaluation, of("evaluate", n));
    const cpu = t.openedAt && t.lastVerdictAt ? sampler?.between(t.openedAt, t.lastVerdictAt) : undefined;
    if (cpu) {
      const parts = Object.entries(cpu.byProcess)
        .filter(([, c]) => c >= 0.005)
        .sort(([, x], [, y]) => y - x)
        // A multi-threaded process's main thread apart: a peer's messaging there, its model in a worker thread.
        .map(([p, c]) => `${p} ${c.toFixed(2)}${c - (cpu.mainThread[p] ?? c) >= 0.005 ? ` (main thread ${(cpu.mainThread[p] ?? 0).toFixed(2)})` : ""}`);
      cpuLines.push(
        `iteration ${n} answer+judge (${cpu.seconds.toFixed(1)} s): the demo's processes ${cpu.demo.toFixed(2)} cores (${parts.join(", ")}); the machine ${cpu.machine.toFixed(2)} of ${CORES}`,
      );
      const modelCpu = (cpuOf("generate", n - 1) + cpuOf("judge", n - 1)) / 1000;
      cpuLines.push(
        `  CPU seconds: the demo's processes ${(cpu.demo * cpu.seconds).toFixed(1)} against ${modelCpu.toFixed(1)} of model work in one process: ${((cpu.demo * cpu.seconds) / modelCpu).toFixed(2)}x`,
      );
    }
  }
  const sum = (phase: string) =>
    rows.filter((r) => r.phase === phase).reduce((s, r) => ({ demo: s.demo + r.demoS, bound: s.bound + r.boundS }), { demo: 0, bound: 0 });
  const boundAll = rows.reduce((s, r) => s + r.boundS * 1000, 0);
  const iterationsMs = timeline.iterations.reduce((s, t) => s + (t.collecting ?? 0) + (t.voteWait ?? 0) + (t.training ?? 0) + (t.evaluation ?? 0), 0);
  const f = (x: number) => x.toFixed(1);
  const lines = [
    `bound: the one-process times of the same work, max(sum over members / ${CORES} cores, the slowest member)`,
    `${"iteration".padEnd(10)}${"phase".padEnd(14)}${"demo s".padStart(8)}${"1-proc s".padStart(10)}${"bound s".padStart(9)}${"ratio".padStart(7)}`,
    ...rows.map(
      (r) =>
        `${String(r.iteration).padEnd(10)}${r.phase.padEnd(14)}${f(r.demoS).padStart(8)}${f(r.oneProcessS).padStart(10)}${f(r.boundS).padStart(9)}${r.ratio.toFixed(2).padStart(7)}`,
    ),
    ...["answer+judge", "training", "evaluation"].map((p) => {
      const s = sum(p);
      return `${"all".padEnd(10)}${p.padEnd(14)}${f(s.demo).padStart(8)}${"".padStart(10)}${f(s.bound).padStart(9)}${(s.demo / s.bound).toFixed(2).padStart(7)}`;
    }),
    `the iterations' phases (vote waits included): ${f(iterationsMs / 1000)} s against ${f(boundAll / 1000)} s bound: ${(iterationsMs / boundAll).toFixed(2)}`,
    `the whole demo (start-up, pool and report included): ${f(timeline.totalMs / 1000)} s against ${f(boundAll / 1000)} s bound: ${(timeline.totalMs / boundAll).toFixed(2)}` +
      ` (its process ${f(demoWall / 1000)} s; one process ${f(sim.wallMs / 1000)} s sequential)`,
    `load (1 min): before ${loadBefore}, between ${loadBetween}, after ${loadAfter}`,
    ...cpuLines,
  ];
  const table = lines.join("\n");
  process.stdout.write(table + "\n");
  if (a.out)
    writeFileSync(
      a.out,
      JSON.stringify(
        { rows, totalMs: timeline.totalMs, boundMs: boundAll, iterationsMs, load: { before: loadBefore, between: loadBetween, after: loadAfter } },
        null,
        2,
      ),
    );
  resultsFile.write({
    summary: "The demo's wall time per phase against the compute bound of the same work in one process (simulate-pop).",
    settings: { iterations: a.iterations!, "prompts per iteration": a.prompts!, k: a.k!, cores: CORES },
    sections: [{ heading: "Demo against its compute bound", markdown: fence(table) }],
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
