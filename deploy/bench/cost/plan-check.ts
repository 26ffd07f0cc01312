/**
 * `pop plan` against the run it projects (`npm run bench:cost -- --parts plan`): one `pop serve`
 * per shipped member, `pop plan`'s calibration and projection for an experiment of one
 * iteration, then that iteration run for real by a coordinator and one `pop actor --backend
 * openai` per member, each a process of its own as a served panel is deployed. The figure the
 * projection is held to is the iteration's time from `iteration_opened` to `experiment_done`
 * (answering, judging, voting and the hand-off to training; these members do not train).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { shippedMembers } from "../../../actors/models/tiny/checkpoints.ts";
import { JUDGE_TEMPERATURE } from "../../../actors/models/tiny/backend.ts";
import { STREAMS, readStored, subjects, type ExperimentConfig } from "../../../protocol/mod.ts";
import { PopProcess } from "../../cli/processes.ts";
import { createExperiment } from "../../ops/experiment.ts";
import { calibrate } from "../../ops/plan/calibrate.ts";
import { project, type Projection } from "../../ops/plan/project.ts";
import { samplePrompts } from "../../ops/plan/sample-prompts.ts";
import { machineBusySeconds, treeCpuSeconds } from "../../ops/plan/host-cpu.ts";

/** What the check found. */
export interface PlanCheck {
  members: string[];
  prompts: number;
  k: number;
  mode: string;
  judgesPerAuthor: number | "all";
  /** The projection's seconds per iteration (model time and the loop's overhead). */
  projectedSeconds: number;
  /** Of which the loop's own overhead. */
  projectedOverheadSeconds: number;
  /** The real iteration: iteration_opened to experiment_done. */
  actualSeconds: number;
  /** iteration_opened to iteration_closed (the last prompt voted). */
  actualVotedSeconds: number;
  /** Per member: projected and counted (its training_done's cost) requests, and the mean latency of each kind in the calibration and in the run. */
  requests: {
    member: string;
    projectedAnswer: number;
    projectedJudge: number;
    answer: number;
    judge: number;
    answerLatency: number;
    judgeLatency: number;
    calAnswerLatency: number;
    calJudgeLatency: number;
  }[];
  /** projected / actual. */
  ratio: number;
  /**
   * CPU seconds per second of wall time during the calibration's measured pass and the run
   * (iteration_opened to experiment_done), by process: the model servers, the calibration's
   * workers or the actors, the coordinator, this process (and the nats-server), the machine.
   */
  cpu: { calibration: CpuShare; run: CpuShare };
  /**
   * The panel's CPU in the run (actors, coordinator, this process and the nats-server) over the
   * calibration clients' CPU scaled to the run's prompts: 1 + project.ts's PANEL_CPU_PER_CLIENT_CPU
   * if that constant holds.
   */
  panelPerClientCpu: number;
  /** The projection's shared-host factor (1: none). */
  hostFactor: number;
  /** 1-minute load average before the calibration and after the run. */
  load: [number, number];
  projection: Projection;
}

/** Cores used on average, by process kind. */
export interface CpuShare {
  wallSeconds: number;
  servers: number;
  actors: number;
  coordinator: number;
  rest: number;
  machine: number;
}

export interface PlanCheckSpec {
  nc: NatsConnection;
  natsUrl: string;
  dir: string;
  /** The experiment to run: one iteration; its config gives k, the mode and m. */
  config: ExperimentConfig;
  /** Calibration prompts per member (pop plan's --samples). */
  samples: number;
  timeoutMs: number;
  say: (line: string) => void;
}

/** Starts a `pop serve` per shipped member, plans, runs, compares; stops everything it started. */
export async function checkPlan(spec: PlanCheckSpec): Promise<PlanCheck> {
  const { config, say } = spec;
  if (config.iterations !== 1) throw new Error("the plan check runs an experiment of one iteration");
  const names = shippedMembers().slice(0, Math.max(config.minPeers, 2));
  const processes: PopProcess[] = [];
  const spawn = (name: string, args: string[]) => {
    const p = new PopProcess(name, args, join(spec.dir, `${name}.log`));
    processes.push(p);
    return p;
  };
  try {
    const urls = await Promise.all(names.map((n) => serve(spawn(`serve-${n}`, ["serve", "--peer", n, "--port", "0", "--log-format", "json"]))));
    const members = names.map((name, i) => ({ name, baseUrl: urls[i]!, model: name }));
    // A process that has exited reads 0 (the coordinator exits once the experiment is done): keep its last reading.
    const last = new Map<string, number>();
    const sample = () => {
      const t = treeCpuSeconds({ self: process.pid, ...Object.fromEntries(processes.map((p) => [p.name, p.pid])) });
      for (const [name, cpu] of Object.entries(t)) if (name !== "self") last.set(name, (t[name] = Math.max(cpu, last.get(name) ?? 0)));
      const of = (prefix: string) => processes.filter((p) => p.name.startsWith(prefix)).reduce((x, p) => x + (t[p.name] ?? 0), 0);
      const servers = of("serve-");
      const coordinator = of("coordinator");
      const actors = processes.filter((p) => names.includes(p.name)).reduce((x, p) => x + (t[p.name] ?? 0), 0);
      return { at: performance.now(), servers, actors, coordinator, rest: t.self! - servers - actors - coordinator, machine: machineBusySeconds() };
    };
    const share = (a: ReturnType<typeof sample>, b: ReturnType<typeof sample>): CpuShare => {
      const wallSeconds = (b.at - a.at) / 1000;
      const per = (k: "servers" | "actors" | "coordinator" | "rest" | "machine") => (b[k] - a[k]) / wallSeconds;
      return { wallSeconds, servers: per("servers"), actors: per("actors"), coordinator: per("coordinator"), rest: per("rest"), machine: per("machine") };
    };
    const loadBefore = loadavg()[0]!;
    say(`plan: calibrating ${names.join(", ")} (${spec.samples} samples each, together), load ${loadBefore.toFixed(2)}`);
    const drawn = await samplePrompts(2 * spec.samples);
    const calOptions = {
      k: config.sampling.k,
      temperature: config.sampling.temperature,
      maxTokens: config.sampling.maxTokens,
      mode: config.judging.mode,
      prompts: drawn.slice(0, spec.samples),
      warmPrompts: drawn.slice(spec.samples),
      concurrency: 16,
      waitMs: 30_000,
      timeoutMs: 60_000,
    };
    // The calibration's workers are this process's children (counted in `rest` then `actors`' place).
    let calStart: ReturnType<typeof sample> | undefined;
    let calEnd: ReturnType<typeof sample> | undefined;
    const calibrations = await calibrate(members, {
      ...calOptions,
      onProgress: (_m, phase, done, total) => {
        calStart ??= sample();
        if (phase === "judge" && done === total) calEnd = sample();
      },
    });
    calEnd ??= sample();
    const projection = project(calibrations, {
      experiment: config.experiment,
      iterations: 1,
      promptsPerIteration: config.promptsPerIteration,
      k: config.sampling.k,
      mode: config.judging.mode,
      judgesPerAuthor: config.judging.judgesPerAuthor,
      selfJudging: config.voting.selfJudging,
    });
    say(`plan: projected ${projection.perIteration.seconds.toFixed(1)} s (overhead ${projection.perIteration.overheadSeconds.toFixed(1)} s); running it`);

    await createExperiment(spec.nc, config);
    const server = ["--server", spec.natsUrl, "--experiment", config.experiment, "--log-format", "json"];
    spawn("coordinator", ["coordinator", ...server]);
    for (const m of members)
      spawn(m.name, [
        "actor",
        "--peer",
        m.name,
        "--backend",
        "openai",
        "--base-url",
        m.baseUrl,
        "--model",
        m.model,
        "--judge-temperature",
        String(JUDGE_TEMPERATURE),
        ...server,
      ]);
    const deadline = Date.now() + spec.timeoutMs;
    let control;
    let runStart: ReturnType<typeof sample> | undefined;
    for (;;) {
      control = (await readStored(spec.nc, STREAMS.control.name, subjects.all(config.experiment, "ctl"), "control")).messages;
      if (control.some((e) => e.event === "experiment_done")) break;
      if (!runStart && control.some((e) => e.event === "iteration_opened")) runStart = sample();
      else if (runStart) sample(); // keeps each process's last reading
      const dead = processes.find((p) => !p.running);
      if (dead) throw new Error(`${dead.name} ended during the run:\n${dead.logTail()}`);
      if (Date.now() > deadline) throw new Error(`${config.experiment} did not finish in ${spec.timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const runEnd = sample();
    const cpu = { calibration: share(calStart ?? calEnd, calEnd), run: share(runStart ?? runEnd, runEnd) };
    // The calibration's workers ran in this process's tree: they are its "actors".
    cpu.calibration.actors = cpu.calibration.rest;
    cpu.calibration.rest = 0;
    const at = (event: string) => control.find((e) => e.event === event)?.at ?? NaN;
    const actualSeconds = (at("experiment_done") - at("iteration_opened")) / 1000;
    const actualVotedSeconds = (at("iteration_closed") - at("iteration_opened")) / 1000;
    const requests = projection.members.map((m) => {
      const cost = control.find((e) => e.event === "training_done" && e.peer === m.name);
      const c = cost?.event === "training_done" ? cost.cost : undefined;
      return {
        member: m.name,
        projectedAnswer: m.perIteration.answer.requests,
        projectedJudge: m.perIteration.judge.expectedRequests,
        answer: c?.answer?.requests ?? NaN,
        judge: c?.judge?.requests ?? NaN,
        answerLatency: (c?.answer?.seconds ?? NaN) / (c?.answer?.requests ?? NaN),
        judgeLatency: (c?.judge?.seconds ?? NaN) / (c?.judge?.requests ?? NaN),
        calAnswerLatency: m.measured.answerLatency,
        calJudgeLatency: m.measured.judgeLatency,
      };
    });
    return {
      members: names,
      requests,
      prompts: config.promptsPerIteration,
      k: config.sampling.k,
      mode: config.judging.mode,
      judgesPerAuthor: config.judging.judgesPerAuthor,
      projectedSeconds: projection.perIteration.seconds,
      projectedOverheadSeconds: projection.perIteration.overheadSeconds,
      actualSeconds,
      actualVotedSeconds,
      ratio: projection.perIteration.seconds / actualSeconds,
      cpu,
      panelPerClientCpu:
        ((cpu.run.actors + cpu.run.coordinator + cpu.run.rest) * cpu.run.wallSeconds) /
        ((calibrations.reduce((sum, c) => sum + c.clientCpuSeconds, 0) * config.promptsPerIteration) / spec.samples),
      hostFactor: projection.sharedHost?.factor ?? 1,
      load: [loadBefore, loadavg()[0]!],
      projection,
    };
  } finally {
    // Peers before the servers they answer through.
    for (const p of processes.reverse()) await p.stop(5000).catch(() => undefined);
  }
}

/** Waits for a `pop serve` to print where it serves. */
async function serve(proc: PopProcess, timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running) throw new Error(`${proc.name} ended early:\n${proc.logTail()}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} did not come up in ${timeoutMs / 1000} s:\n${proc.logTail()}`);
    const url = /serving \S+ at (http:\/\/\S+\/v1)/.exec(readFileSync(proc.logFile, "utf8"))?.[1];
    if (url) return url;
    await new Promise((r) => setTimeout(r, 200));
  }
}
