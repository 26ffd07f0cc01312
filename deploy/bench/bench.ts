/**
 * `npm run bench [-- --out FILE ...]`: the message plane against raw JetStream on this machine, in
 * one run, on a real nats-server:
 *
 * 1. raw: JetStream publish and consume (with acks) of messages with ids and headers like the
 *    project's, one publisher and one consumer side by side;
 * 2. plane: one iteration of the PoP loop, the coordinator and every peer each a process of its
 *    own, the peers real actors over the load generator (no model): prompts/s, messages and
 *    bytes per prompt, the coordinator's CPU per message, against the cost of decoding and
 *    validating one;
 * 3. utilization: the same with a fixed time per item and a GPU's batch slots, one member 3x
 *    slower: the iteration's wall time against its critical path (the busiest member's work
 *    divided by its slots);
 * 4. memory: peak RSS of the coordinator and of one actor at several prompt counts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import {
  admit,
  BUCKETS,
  ensureTopology,
  kvmOf,
  memberKeys,
  headersFor,
  jetStreamOf,
  managerOf,
  PROTOCOL_VERSION,
  readStored,
  STREAMS,
  subjects,
  encode,
  type Verdict,
} from "../../protocol/mod.ts";
import { UsageError } from "../cli/args.ts";
import { exitWithUsage, scriptFlags } from "../cli/script-flags.ts";
import { connectNats } from "../cli/connect.ts";
import { DEMO_DEFAULTS } from "../demo/defaults.ts";
import { createExperiment, experimentConfig, loadTinyPool } from "../ops/experiment.ts";
import { loadLightPool } from "./load/light-pool.ts";
import { nodeArgsFor } from "../cli/node-args.ts";
import { NatsServer } from "../ops/nats-server.ts";
import { ProgressReporter } from "../cli/progress.ts";
import { ResultsRun, commandLine, fence, type ResultSection } from "../observe/results/write.ts";

const help = `npm run bench [-- options]

Measures the message plane against raw JetStream on this machine, in one run (see
deploy/bench/bench.ts), prints the tables and writes them as JSON.

  --out FILE              write the figures as JSON here
  --peers A,B             panel sizes for the plane                       default: 3,8,16
  --k A,B                 candidates per member                           default: 4,15
  --prompts N             prompts per plane run         default: max(2000, 24000 / peers)
                          (small panels move hundreds of prompts a second: their
                          runs get more prompts, so start-up does not dominate)
  --raw N                 messages in the raw JetStream run               default: 20000
  --util-peers N          panel size for the utilization runs             default: 3
  --util-prompts N        prompts per utilization run                     default: 1000
  --answer-ms N           utilization: time per prompt answered           default: 40
  --judge-ms N            utilization: time per candidate judged          default: 5
  --slots N               utilization: items in flight per member         default: 8
  --memory-peers N        panel size for the memory runs                  default: 16
  --memory-prompts A,B    prompt counts for the memory runs               default: 1000,10000
  --memory-k N            candidates per member in the memory runs        default: 4
  --memory-images N       memory runs on a pool whose prompts share N distinct tiny-world
                          images (stored once; a million prompts load in a minute), not
                          the tiny world's pool of one image per prompt   default: unset
                          (the memory of one actor then leaves out its image cache's)
  --memory-trace FILE     append the coordinator's VmRSS/VmHWM and the votes every 30 s
  --memory-lease-ms N     the memory runs' coordinator lease (coordination.leaseMs)  default: the config's
                          (10 s: on a host starved of CPU a renewal can be 8 s late; each lapse
                          makes the coordinator stand by, take over and replay the iteration)
  --skip LIST             parts to leave out: raw,plane,fan-out,utilization,memory
                          (fan-out: raw JetStream with as many readers per message
                          as the plane has, beside each plane run)
  --logs DIR              keep every process's output there (one file per process and run)
  --results DIR           where the markdown results file goes            default: docs/results
                          (none: no file)`;

const CLI = fileURLToPath(new URL("../cli/cli.ts", import.meta.url));
const PEER = fileURLToPath(new URL("./load/peer.ts", import.meta.url));
const RAW_READER = fileURLToPath(new URL("./load/raw-reader.ts", import.meta.url));
const PROBE = fileURLToPath(new URL("./load/heap-probe.ts", import.meta.url));
const list = (s: string) => s.split(",").map((x) => Number(x.trim()));

/** CPU milliseconds per prompt over an iteration: the nats-server, the coordinator, all members together. */
interface CpuPerPrompt {
  server: number;
  coordinator: number;
  actors: number;
}

/**
 * One plane run. Beside the issue's figures: `cpuMsPerPrompt`, where a prompt's CPU goes; `readsPerMsg`, how many processes read each message
 * (the plane's fan-out), and `rawFanOutMsgsPerSec`, raw JetStream with that many readers (rounded
 * down, so the baseline is if anything faster), with the plane's mean message size; the plane's
 * rate against it is `ratioToRawFanOut`.
 */
interface PlaneRow {
  peers: number;
  k: number;
  prompts: number;
  promptsPerSec: number;
  msgsPerSec: number;
  msgsPerPrompt: number;
  bytesPerPrompt: number;
  coordCpuUsPerMsg: number;
  decodeUsPerMsg: number;
  ratioToRaw: number;
  cpuMsPerPrompt: CpuPerPrompt;
  readsPerMsg: number;
  rawFanOutMsgsPerSec: number;
  ratioToRawFanOut: number;
  wallSec: number;
}
interface UtilRow {
  peers: number;
  slowMember: boolean;
  prompts: number;
  wallSec: number;
  boundSec: number;
  ratio: number;
}
/**
 * `liveHeapMb`: the most heap in use after a full collection (what the process held), beside the
 * peak RSS; `heapTotalMb` and `externalMb`: the peaks of V8's heap as reserved and of memory
 * outside it (what a peak RSS above the live heap is made of). `startupSec` (coordinator): from its process's start, the panel already up, to the
 * first prompt stored; `promptsPerSec` over the iteration; `load`: the 1-minute load average at
 * the run's start and end (timings on a shared machine need it).
 */
interface MemRow {
  process: "coordinator" | "actor";
  peers: number;
  k: number;
  prompts: number;
  peakRssMb: number;
  liveHeapMb: number;
  heapTotalMb: number;
  externalMb: number;
  startupSec?: number;
  promptsPerSec?: number;
  load?: [number, number];
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100/s on Linux)
}

/** Peak resident memory of a process (VmHWM), MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * A process's CPU time and peak memory, read every 100 ms while it lives: the coordinator exits
 * on its own once the experiment is done, and its last reading is what it used.
 */
function sampler(pid: number): { cpu: number; peakMb: number; stop(): void } {
  const s = { cpu: 0, peakMb: 0, stop: () => clearInterval(timer) };
  const read = () => {
    try {
      s.cpu = cpuSeconds(pid);
      // An exited process not yet reaped (a zombie) has no VmHWM any more: keep the last reading.
      const peak = peakRssMb(pid);
      if (Number.isFinite(peak)) s.peakMb = Math.max(s.peakMb, peak);
    } catch {
      clearInterval(timer); // exited
    }
  };
  const timer = setInterval(read, 100);
  read();
  return s;
}

/** Where --logs keeps the processes' output; unset: their output is kept only to explain a failure. */
let logDir: string | undefined;

/** What this run has started, so Ctrl-C or SIGTERM leaves nothing behind. */
const live = { children: new Set<ChildProcess>(), servers: new Set<NatsServer>() };

async function startServer(): Promise<NatsServer> {
  const server = await NatsServer.start();
  live.servers.add(server);
  return server;
}

async function disposeServer(server: NatsServer): Promise<void> {
  live.servers.delete(server);
  await server.dispose();
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping the benchmark's processes\n`);
    for (const c of live.children) c.kill("SIGKILL");
    void Promise.allSettled([...live.servers].map((s) => s.dispose())).then(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

/** A process of the run, with what it printed. */
type Child = ChildProcess & { out: string; probe?: string };

/** Starts a process of the run; `probe`: with the heap probe (load/heap-probe.ts), its reading in `child.probe`'s file. */
function start(name: string, args: string[], options: { probe?: boolean } = {}): Child {
  // POP_BENCH_NODE_ARGS reaches the coordinator and peers, e.g. "--cpu-prof --cpu-prof-dir=prof".
  const nodeArgs = (process.env.POP_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const probe = options.probe ? join(tmpdir(), `pop-bench-heap-${process.pid}-${name}.json`) : undefined;
  const env: Record<string, string> = probe ? { POP_HEAP_PROBE_FILE: probe } : {};
  // The pop command's own flags (the coordinator's), as deploy/cli/processes.ts starts it.
  const popArgs = args[0] === CLI ? nodeArgsFor(args.slice(1)) : [];
  const child = spawn(process.execPath, [...popArgs, ...nodeArgs, "--import", "tsx", ...(probe ? ["--import", PROBE] : []), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, POP_LOG_LEVEL: "warn", ...env },
  }) as Child;
  child.out = "";
  child.probe = probe;
  live.children.add(child);
  child.once("exit", () => live.children.delete(child));
  child.stdout!.on("data", (d: Buffer) => (child.out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (child.out += d.toString()));
  if (logDir) {
    const file = createWriteStream(join(logDir, `${name}.log`));
    child.stdout!.pipe(file);
    child.stderr!.pipe(file);
  }
  return child;
}

async function stop(children: Child[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const kill = setTimeout(() => c.kill("SIGKILL"), 15_000);
          c.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          c.kill("SIGTERM");
        }),
    ),
  );
}

/** A verdict as a judge sends it, for the message size and the decode cost. */
function sampleVerdict(k: number): Verdict {
  return {
    v: PROTOCOL_VERSION,
    type: "verdict",
    experiment: "bench",
    iteration: 1,
    promptId: "tiny-pool-7-123",
    judge: "p1",
    authors: ["p0"],
    modelVersion: "load0000",
    scores: Array.from({ length: k }, (_, i) => ({
      candidateId: `tiny-pool-7-123:p0:${i}`,
      likert: { helpfulness: 4.25, correctness: 3.5, coherence: 4.75, complexity: 2.5, verbosity: 3.25 },
    })),
    createdAt: Date.now(),
  };
}

/** A stored message and the type its readers admit it as. */
interface Sample {
  subject: string;
  data: Uint8Array;
  type: "candidates" | "verdict";
}

/** Microseconds to decode and validate one of `samples` (the consumers' admission), in a warm loop. */
function decodeCostUs(samples: Sample[]): number {
  const once = () => {
    for (const m of samples)
      if (!admit(m.subject, m.data, [m.type]).ok) throw new Error(`the benchmark's own ${m.type} on ${m.subject} does not pass admission`);
  };
  const rounds = Math.max(1, Math.ceil(20_000 / samples.length));
  for (let i = 0; i < Math.ceil(rounds / 10); i++) once();
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) once();
  return ((performance.now() - t0) * 1000) / (rounds * samples.length);
}

/**
 * What decoding costs the coordinator per message in a run: the warm-loop admission cost of the
 * first stored candidate batches and verdicts (their sizes grow with the panel and k), weighted by
 * how many of each the run stored.
 */
async function runDecodeCostUs(jsm: Awaited<ReturnType<typeof managerOf>>): Promise<number> {
  let cost = 0;
  let count = 0;
  for (const [stream, type] of [
    [STREAMS.candidates.name, "candidates"],
    [STREAMS.verdicts.name, "verdict"],
  ] as const) {
    const { state } = await jsm.streams.info(stream);
    const samples: Sample[] = [];
    for (let seq = state.first_seq; seq < state.first_seq + Math.min(200, state.messages); seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m) samples.push({ subject: m.subject, data: m.data, type });
    }
    if (!samples.length) continue;
    cost += decodeCostUs(samples) * state.messages;
    count += state.messages;
  }
  return count ? cost / count : NaN;
}

/** Publishes `n` copies of `data` under `prefix` as a judge's verdicts go out (ids, headers), 256 in flight at a time. */
async function publishRaw(js: ReturnType<typeof jetStreamOf>, prefix: string, n: number, data: Uint8Array): Promise<void> {
  const headers = headersFor(sampleVerdict(4));
  const window = 256;
  for (let i = 0; i < n; i += window) {
    await Promise.all(
      Array.from({ length: Math.min(window, n - i) }, (_, j) =>
        js.publish(`${prefix}.verdict.1.p${(i + j) % 16}`, data, { msgID: `verdict:bench:1:${i + j}:p0:p1`, headers }),
      ),
    );
  }
}

/** Raw JetStream: publish with ids and headers, consume and ack, side by side. Messages per second. */
async function rawJetStream(n: number): Promise<number> {
  const server = await startServer();
  const nc = await connectNats(server.url, "bench-raw");
  const consumerNc = await connectNats(server.url, "bench-raw-consumer");
  try {
    const jsm = await managerOf(nc);
    await jsm.streams.add({ name: "BENCH_RAW", subjects: ["bench.raw.>"], duplicate_window: 120_000_000_000 });
    await jsm.consumers.add("BENCH_RAW", { durable_name: "c", ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, max_ack_pending: 10_000 });
    const data = encode(sampleVerdict(4));
    const consumer = await jetStreamOf(consumerNc).consumers.get("BENCH_RAW", "c");
    const t0 = performance.now();
    const consumed = (async () => {
      let got = 0;
      const msgs = await consumer.consume({ max_messages: 256 });
      for await (const m of msgs) {
        m.ack();
        if (++got >= n) break;
      }
      await msgs.close();
    })();
    await publishRaw(jetStreamOf(nc), "bench.raw", n, data);
    await consumed;
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await consumerNc.close();
    await nc.close();
    await disposeServer(server);
  }
}

/**
 * Raw JetStream at the plane's fan-out: one publisher (ids and headers as ours) and `readers`
 * reader processes, each with a durable consumer of its own that acknowledges every message and
 * does nothing else. What JetStream alone moves on this machine when every message is read that
 * many times by that many processes. Messages per second.
 */
async function rawFanOut(n: number, readers: number, payloadBytes: number): Promise<number> {
  const server = await startServer();
  const nc = await connectNats(server.url, "bench-fan-out");
  const children: Child[] = [];
  try {
    const jsm = await managerOf(nc);
    await jsm.streams.add({ name: "BENCH_FAN", subjects: ["bench.fan.>"], duplicate_window: 120_000_000_000 });
    for (let i = 0; i < readers; i++)
      children.push(start(`fan-out-${readers}-r${i}`, [RAW_READER, "--server", server.url, "--stream", "BENCH_FAN", "--name", `r${i}`, "--count", String(n)]));
    const deadline = Date.now() + 60_000;
    while (!children.every((c) => c.out.includes("ready"))) {
      if (Date.now() > deadline || children.some((c) => c.exitCode !== null))
        throw new Error(`the raw readers did not start:\n${children.map((c) => c.out.slice(-1500)).join("\n")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const data = new Uint8Array(payloadBytes).fill(0x61);
    const js = jetStreamOf(nc);
    const done = Promise.all(children.map((c) => new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once("exit", () => resolve())))));
    const t0 = performance.now();
    await publishRaw(js, "bench.fan", n, data);
    await done;
    const sec = (performance.now() - t0) / 1000;
    const bad = children.find((c) => c.exitCode !== 0);
    if (bad) throw new Error(`a raw reader failed:\n${bad.out.slice(-1500)}`);
    return n / sec;
  } finally {
    await stop(children);
    await nc.close();
    await disposeServer(server);
  }
}

/** The streams an iteration's messages travel on. */
const PLANE_STREAMS = [STREAMS.prompts, STREAMS.candidates, STREAMS.verdicts, STREAMS.pairs];

/**
 * How many processes read each message of a stream during an iteration, as the plane is built:
 * a prompt every member; a candidate batch every other member (to judge it) and the coordinator;
 * a verdict and a pair the coordinator (members read pairs when they train, after the iteration).
 */
function readersOf(stream: string, peers: number): number {
  if (stream === STREAMS.prompts.name) return peers;
  if (stream === STREAMS.candidates.name) return peers;
  return 1;
}

interface RunResult {
  wallSec: number;
  messages: number;
  bytes: number;
  deliveries: number;
  cpuMsPerPrompt: CpuPerPrompt;
  decodeUsPerMsg: number;
  coordCpuSec: number;
  coordPeakMb: number;
  actorPeakMb: number;
  coordHeap: HeapReading;
  actorHeap: HeapReading;
  workMs: number[];
  /** From the coordinator process's start (the panel up) to its first prompt stored. */
  startupSec: number;
}

/** What a process's heap probe wrote, MB: live heap, V8's heap as reserved, memory outside it (NaN: no probe, or it did not exit cleanly). */
interface HeapReading {
  liveHeapMb: number;
  heapTotalMb: number;
  externalMb: number;
}

/** Reads (and removes) a process's heap probe file. */
function heapReading(child: Child): HeapReading {
  const none = { liveHeapMb: NaN, heapTotalMb: NaN, externalMb: NaN };
  if (!child.probe) return none;
  try {
    return { ...none, ...(JSON.parse(readFileSync(child.probe, "utf8")) as Partial<HeapReading>) };
  } catch {
    return none;
  } finally {
    rmSync(child.probe, { force: true });
  }
}

/** One iteration of the loop: coordinator and peers as processes, the load generator as every peer's model. */
async function runIteration(
  peers: number,
  k: number,
  prompts: number,
  load: { answerMs: number; judgeMs: number; slots: number; slowFactor?: number },
  options: { probe?: boolean; imagesShared?: number; trace?: string; leaseMs?: number } = {},
): Promise<RunResult> {
  const server = await startServer();
  const nc = await connectNats(server.url, "bench");
  const children: Child[] = [];
  const exp = `bench${peers}k${k}`;
  try {
    await ensureTopology(nc);
    const pool = options.imagesShared ? await loadLightPool(nc, 7, prompts, options.imagesShared, exp) : (await loadTinyPool(nc, 7, prompts, exp)).name;
    const config = experimentConfig(
      { experiment: exp, iterations: 1, promptsPerIteration: prompts, k, temperature: 1, poolSeed: 7, minPeers: peers },
      {
        voting: DEMO_DEFAULTS.overrides.voting,
        heartbeat: { intervalMs: 2000, lapseMs: 600_000 },
        deadlines: { voteMs: 600_000, trainMs: 600_000, trainQuorum: 1, judgeLingerMs: 5_000 },
        ...(options.leaseMs ? { coordination: { leaseMs: options.leaseMs } } : {}),
      },
    );
    await createExperiment(nc, { ...config, pool: { ...config.pool, name: pool } });
    const runName = `${exp}-n${prompts}${load.slowFactor ? `-slow${load.slowFactor}` : ""}`;
    // Long runs get the time their size needs (a million prompts at a few hundred a second).
    const deadline = Date.now() + 30 * 60_000 + prompts * 10;
    // The panel first: the coordinator's start-up is then its own, from its process's start to its first prompt.
    for (let i = 0; i < peers; i++) {
      const slow = i === 0 && load.slowFactor ? load.slowFactor : 1;
      children.push(
        start(
          `${runName}-p${i}`,
          [
            PEER,
            "--server",
            server.url,
            "--experiment",
            exp,
            "--peer",
            `p${i}`,
            "--answer-ms",
            String(load.answerMs * slow),
            "--judge-ms",
            String(load.judgeMs * slow),
            "--slots",
            String(load.slots),
          ],
          { probe: options.probe && i === 0 },
        ),
      );
    }
    const members = await kvmOf(nc).open(BUCKETS.members);
    const up = async () => {
      let n = 0;
      for await (const _ of await members.keys(memberKeys.all(exp))) n++;
      return n;
    };
    while ((await up()) < peers) {
      if (Date.now() > deadline || children.some((c) => c.exitCode !== null))
        throw new Error(`the panel did not start:\n${children.map((c) => c.out.slice(-1500)).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const coordinatorStart = Date.now();
    const coordinator = start(`${runName}-coordinator`, [CLI, "coordinator", "--server", server.url, "--experiment", exp], options);
    children.unshift(coordinator);
    const control = async (event: "iteration_opened" | "iteration_closed") =>
      (await readStored(nc, STREAMS.control.name, subjects.control(exp, event), "control")).messages[0];
    let opened;
    while (!(opened = await control("iteration_opened"))) {
      if (Date.now() > deadline || children.some((c) => c.exitCode !== null))
        throw new Error(`the iteration did not open:\n${children.map((c) => c.out.slice(-1500)).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const coord = sampler(coordinator.pid!);
    const actor = sampler(children[1]!.pid!);
    const jsm = await managerOf(nc);
    const firstPrompt = await (async () => {
      for (;;) {
        const m = await jsm.streams.getMessage(STREAMS.prompts.name, { seq: 1 }).catch(() => undefined);
        if (m) return m.time.getTime();
        if (Date.now() > deadline) throw new Error("no prompt was published");
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const startupSec = (firstPrompt - coordinatorStart) / 1000;
    const trace = options.trace
      ? traceCoordinator(options.trace, coordinator.pid!, children[1]!.pid!, `${peers} peers, k=${k}, ${prompts} prompts`, jsm)
      : undefined;
    // The server's and the members' CPU over the iteration too: where a prompt's CPU goes.
    const others = () => ({ server: cpuSeconds(server.pid!), actors: children.slice(1).reduce((sum, c) => sum + cpuSeconds(c.pid!), 0) });
    const others0 = others();
    const cpu0 = coord.cpu;
    const bar = new ProgressReporter(`  ${peers} peers, k=${k}, ${prompts} prompts`, prompts, { unit: "prompts voted", everyMs: 15_000 });
    let closed;
    while (!(closed = await control("iteration_closed"))) {
      if (Date.now() > deadline || children.some((c) => c.exitCode !== null))
        throw new Error(`the iteration did not close:\n${children.map((c) => c.out.slice(-1500)).join("\n")}`);
      bar.update(Math.min(prompts, (await jsm.streams.info(STREAMS.pairs.name)).state.messages));
      await new Promise((r) => setTimeout(r, 200));
    }
    bar.update(prompts);
    bar.finish();
    trace?.stop();
    const others1 = others();
    // A moment for the coordinator's last votes to show in its CPU time (it may exit meanwhile).
    await new Promise((r) => setTimeout(r, 300));
    coord.stop();
    actor.stop();
    const coordCpuSec = coord.cpu - cpu0;
    const cpuMsPerPrompt = {
      server: ((others1.server - others0.server) * 1000) / prompts,
      coordinator: (coordCpuSec * 1000) / prompts,
      actors: ((others1.actors - others0.actors) * 1000) / prompts,
    };
    const wallSec = (closed.at - opened.at) / 1000;
    let messages = 0;
    let bytes = 0;
    let deliveries = 0;
    for (const s of PLANE_STREAMS) {
      const info = await jsm.streams.info(s.name);
      messages += info.state.messages;
      bytes += info.state.bytes;
      deliveries += info.state.messages * readersOf(s.name, peers);
    }
    const coordPeakMb = coord.peakMb;
    const actorPeakMb = actor.peakMb;
    await stop(children);
    const decodeUsPerMsg = await runDecodeCostUs(jsm);
    const workMs = children.slice(1).map((c) => {
      const line = c.out.split("\n").find((l) => l.startsWith("{"));
      return line ? (JSON.parse(line) as { workMs: number }).workMs : NaN;
    });
    return {
      wallSec,
      messages,
      bytes,
      deliveries,
      cpuMsPerPrompt,
      decodeUsPerMsg,
      coordCpuSec,
      coordPeakMb,
      actorPeakMb,
      coordHeap: heapReading(coordinator),
      actorHeap: heapReading(children[1]!),
      workMs,
      startupSec,
    };
  } finally {
    await stop(children);
    await nc.close();
    await disposeServer(server);
  }
}

async function main(): Promise<void> {
  const flags = scriptFlags("bench", help);
  const out = flags.string("out");
  const peersList = list(flags.string("peers") ?? "3,8,16");
  const ks = list(flags.string("k") ?? "4,15");
  const promptsFlag = flags.int("prompts", { min: 1 });
  const promptsFor = (peers: number) => promptsFlag ?? Math.max(2000, Math.round(24_000 / peers));
  const rawN = flags.int("raw", { min: 100 }) ?? 20_000;
  const utilPeers = flags.int("util-peers", { min: 2 }) ?? 3;
  const utilPrompts = flags.int("util-prompts", { min: 1 }) ?? 1000;
  const answerMs = flags.number("answer-ms", { min: 1 }) ?? 40;
  const judgeMs = flags.number("judge-ms", { min: 0 }) ?? 5;
  const slots = flags.int("slots", { min: 1 }) ?? 8;
  const memPeers = flags.int("memory-peers", { min: 2 }) ?? 16;
  const memPrompts = list(flags.string("memory-prompts") ?? "1000,10000");
  const memK = flags.int("memory-k", { min: 1 }) ?? 4;
  const memImages = flags.int("memory-images", { min: 1 });
  const memTrace = flags.string("memory-trace");
  const memLeaseMs = flags.int("memory-lease-ms", { min: 300 });
  const skip = new Set((flags.string("skip") ?? "").split(",").filter(Boolean));
  logDir = flags.string("logs");
  const resultsFile = new ResultsRun("bench", commandLine("bench", process.argv.slice(2)), flags.string("results"));
  flags.rejectUnknown();
  if (logDir) mkdirSync(logDir, { recursive: true });

  const result = {
    machine: `${cpus().length} cores, ${cpus()[0]?.model ?? "?"}`,
    rawJetStreamMsgsPerSec: NaN,
    plane: [] as PlaneRow[],
    utilization: [] as UtilRow[],
    memory: [] as MemRow[],
  };
  const save = () => out && writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  console.log(`npm run bench on ${result.machine}`);
  if (!skip.has("raw")) {
    result.rawJetStreamMsgsPerSec = await rawJetStream(rawN);
    console.log(
      `raw JetStream, publish and consume with acks side by side (${rawN} messages of ${encode(sampleVerdict(4)).length} B): ${result.rawJetStreamMsgsPerSec.toFixed(0)} msgs/s`,
    );
    save();
  }

  if (!skip.has("plane")) {
    console.log(`\nthe message plane: one iteration, coordinator and peers as processes, load generator instead of models`);
    for (const peers of peersList) {
      for (const k of ks) {
        const prompts = promptsFor(peers);
        const r = await runIteration(peers, k, prompts, { answerMs: 0, judgeMs: 0, slots: 1 });
        const msgsPerSec = r.messages / r.wallSec;
        const readsPerMsg = r.deliveries / r.messages;
        const rawFanOutMsgsPerSec = skip.has("fan-out") ? NaN : await rawFanOut(rawN, Math.max(1, Math.floor(readsPerMsg)), Math.round(r.bytes / r.messages));
        const row: PlaneRow = {
          peers,
          k,
          prompts,
          promptsPerSec: prompts / r.wallSec,
          msgsPerSec,
          msgsPerPrompt: r.messages / prompts,
          bytesPerPrompt: r.bytes / prompts,
          coordCpuUsPerMsg: (r.coordCpuSec * 1e6) / r.messages,
          decodeUsPerMsg: r.decodeUsPerMsg,
          ratioToRaw: msgsPerSec / result.rawJetStreamMsgsPerSec,
          cpuMsPerPrompt: r.cpuMsPerPrompt,
          readsPerMsg,
          rawFanOutMsgsPerSec,
          ratioToRawFanOut: msgsPerSec / rawFanOutMsgsPerSec,
          wallSec: r.wallSec,
        };
        result.plane.push(row);
        save();
      }
    }
    console.log(formatPlane(result.plane));
    console.log(`\nwhere a prompt's CPU goes (ms per prompt over the iteration; ${cpus().length} cores bound prompts/s at cores x 1000 / total)`);
    console.log(formatCpu(result.plane));
  }

  if (!skip.has("utilization")) {
    console.log(
      `\nutilization: ${answerMs} ms per prompt answered, ${judgeMs} ms per candidate judged, ${slots} slots per member, k=4, ${utilPrompts} prompts`,
    );
    for (const slowMember of [false, true]) {
      const slowFactor = slowMember ? 3 : 1;
      const r = await runIteration(utilPeers, 4, utilPrompts, { answerMs, judgeMs, slots, slowFactor });
      // The busiest member's own work (what its slots did) divided by its slots: no schedule can
      // finish sooner. For every prompt answered and every other member's candidate judged, at
      // least: prompts x answerMs + prompts x (peers - 1) x k x judgeMs, times the member's slowness.
      const least = Array.from(
        { length: utilPeers },
        (_, i) => (utilPrompts * answerMs + utilPrompts * (utilPeers - 1) * 4 * judgeMs) * (i === 0 ? slowFactor : 1),
      );
      const work = r.workMs.map((w, i) => (Number.isFinite(w) ? Math.max(w, least[i]!) : least[i]!));
      const boundSec = Math.max(...work) / slots / 1000;
      result.utilization.push({ peers: utilPeers, slowMember, prompts: utilPrompts, wallSec: r.wallSec, boundSec, ratio: r.wallSec / boundSec });
      save();
    }
    console.log(formatUtil(result.utilization));
  }

  if (!skip.has("memory")) {
    console.log(
      `\nmemory: peak RSS at ${memPeers} peers, k=${memK}${memImages ? `, prompts sharing ${memImages} images` : ""}${memLeaseMs ? `, coordinator lease ${memLeaseMs} ms` : ""}`,
    );
    for (const p of memPrompts) {
      const load0 = loadavg()[0]!;
      const r = await runIteration(
        memPeers,
        memK,
        p,
        { answerMs: 0, judgeMs: 0, slots: 1 },
        { probe: true, imagesShared: memImages, trace: memTrace, leaseMs: memLeaseMs },
      );
      const timing = { startupSec: r.startupSec, promptsPerSec: p / r.wallSec, load: [load0, loadavg()[0]!] as [number, number] };
      result.memory.push(
        { process: "coordinator", peers: memPeers, k: memK, prompts: p, peakRssMb: r.coordPeakMb, ...r.coordHeap, ...timing },
        { process: "actor", peers: memPeers, k: memK, prompts: p, peakRssMb: r.actorPeakMb, ...r.actorHeap },
      );
      console.log(formatMem(result.memory.slice(-2)));
      save();
    }
    console.log(formatMem(result.memory));
  }
  if (out) console.log(`\nwrote ${out}`);
  const sections: ResultSection[] = [];
  if (!skip.has("raw"))
    sections.push({
      heading: "Raw JetStream",
      markdown: `Publish and consume with acks side by side (${rawN} messages of ${encode(sampleVerdict(4)).length} B): ${result.rawJetStreamMsgsPerSec.toFixed(0)} msgs/s.`,
    });
  if (!skip.has("plane")) {
    sections.push({
      heading: "The message plane (one iteration, coordinator and peers as processes, load generator instead of models)",
      markdown: fence(formatPlane(result.plane)),
    });
    sections.push({
      heading: `Where a prompt's CPU goes (ms per prompt; ${cpus().length} cores bound prompts/s at cores x 1000 / total)`,
      markdown: fence(formatCpu(result.plane)),
    });
  }
  if (!skip.has("utilization"))
    sections.push({
      heading: `Utilization (${answerMs} ms per prompt answered, ${judgeMs} ms per candidate judged, ${slots} slots per member, k=4, ${utilPrompts} prompts)`,
      markdown: fence(formatUtil(result.utilization)),
    });
  if (!skip.has("memory"))
    sections.push({
      heading: `Memory at ${memPeers} peers, k=${memK}${memImages ? `, prompts sharing ${memImages} images` : ""}${memLeaseMs ? `, coordinator lease ${memLeaseMs} ms` : ""}`,
      markdown: fence(formatMem(result.memory)),
    });
  resultsFile.write({
    summary: "The message plane against raw JetStream on a real nats-server (deploy/bench/bench.ts).",
    settings: {
      peers: peersList.join(","),
      k: ks.join(","),
      "prompts per plane run": promptsFlag ?? "max(2000, 24000 / peers)",
      "raw messages": rawN,
      skipped: [...skip].join(",") || "nothing",
    },
    sections,
  });
}

function formatPlane(rows: PlaneRow[]): string {
  const head =
    "peers    k  prompts  prompts/s    msgs/s  msgs/prompt  bytes/prompt  coord µs/msg  decode µs  x decode  ratio to raw  reads/msg  raw fan-out msgs/s  ratio to fan-out";
  return [
    head,
    ...rows.map((r) =>
      [
        String(r.peers).padStart(5),
        String(r.k).padStart(4),
        String(r.prompts).padStart(8),
        r.promptsPerSec.toFixed(1).padStart(10),
        r.msgsPerSec.toFixed(0).padStart(9),
        r.msgsPerPrompt.toFixed(1).padStart(12),
        r.bytesPerPrompt.toFixed(0).padStart(13),
        r.coordCpuUsPerMsg.toFixed(0).padStart(13),
        r.decodeUsPerMsg.toFixed(1).padStart(10),
        (r.coordCpuUsPerMsg / r.decodeUsPerMsg).toFixed(1).padStart(9),
        r.ratioToRaw.toFixed(2).padStart(13),
        r.readsPerMsg.toFixed(1).padStart(10),
        r.rawFanOutMsgsPerSec.toFixed(0).padStart(19),
        r.ratioToRawFanOut.toFixed(2).padStart(17),
      ].join(" "),
    ),
  ].join("\n");
}

function formatCpu(rows: PlaneRow[]): string {
  return [
    "peers    k  nats-server  coordinator  members  total  cores' bound prompts/s",
    ...rows.map((r) => {
      const c = r.cpuMsPerPrompt;
      const total = c.server + c.coordinator + c.actors;
      return `${String(r.peers).padStart(5)} ${String(r.k).padStart(4)}  ${c.server.toFixed(2).padStart(11)}  ${c.coordinator.toFixed(2).padStart(11)}  ${c.actors.toFixed(2).padStart(7)}  ${total.toFixed(2).padStart(5)}  ${((cpus().length * 1000) / total).toFixed(0).padStart(23)}`;
    }),
  ].join("\n");
}

function formatUtil(rows: UtilRow[]): string {
  return [
    "peers  slow member  wall s  bound s  ratio",
    ...rows.map(
      (r) =>
        `${String(r.peers).padStart(5)}  ${(r.slowMember ? "yes (3x)" : "no").padStart(11)}  ${r.wallSec.toFixed(1).padStart(6)}  ${r.boundSec.toFixed(1).padStart(7)}  ${r.ratio.toFixed(2).padStart(5)}`,
    ),
  ].join("\n");
}

function formatMem(rows: MemRow[]): string {
  const opt = (x: number | undefined, digits: number, width: number) => (x === undefined ? "" : x.toFixed(digits)).padStart(width);
  return [
    "process      peers  k  prompts  peak RSS MB  live heap MB  heap MB  external MB  start-up s  prompts/s  load start-end",
    ...rows.map(
      (r) =>
        `${r.process.padEnd(11)}  ${String(r.peers).padStart(5)} ${String(r.k).padStart(2)}  ${String(r.prompts).padStart(7)}  ${r.peakRssMb.toFixed(0).padStart(11)}  ${r.liveHeapMb.toFixed(0).padStart(12)}  ${r.heapTotalMb.toFixed(0).padStart(7)}  ${r.externalMb.toFixed(0).padStart(11)}  ${opt(r.startupSec, 1, 10)}  ${opt(r.promptsPerSec, 0, 9)}  ${r.load ? `${r.load[0].toFixed(1)}-${r.load[1].toFixed(1)}`.padStart(14) : ""}`,
    ),
  ].join("\n");
}

/** Appends the coordinator's and one actor's resident memory (now and peak) and the messages stored every 30 s to `file`: a long run's trajectory. */
function traceCoordinator(file: string, pid: number, actorPid: number, run: string, jsm: Awaited<ReturnType<typeof managerOf>>): { stop(): void } {
  const t0 = Date.now();
  const mem = (of: number) => {
    const status = readFileSync(`/proc/${of}/status`, "utf8");
    const mb = (field: string) => (Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024).toFixed(0);
    return `VmRSS ${mb("VmRSS")} MB VmHWM ${mb("VmHWM")} MB`;
  };
  const line = async () => {
    try {
      // Prompts out and verdicts in as well as pairs: at k = 1 a vote can give no pair.
      const [prompts, verdicts, pairs] = await Promise.all(
        [STREAMS.prompts, STREAMS.verdicts, STREAMS.pairs].map(async (st) => (await jsm.streams.info(st.name)).state.messages),
      );
      const at = new Date().toISOString().slice(11, 19);
      writeFileSync(
        file,
        `${at} ${run} +${Math.round((Date.now() - t0) / 1000)}s coordinator ${mem(pid)} actor ${mem(actorPid)} prompts ${prompts} verdicts ${verdicts} pairs ${pairs} load ${loadavg()[0]!.toFixed(1)}\n`,
        { flag: "a" },
      );
    } catch {
      // exited
    }
  };
  void line();
  const timer = setInterval(() => void line(), 30_000);
  return { stop: () => (clearInterval(timer), void line()) };
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    if (e instanceof UsageError) exitWithUsage("bench", e);
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
