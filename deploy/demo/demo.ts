/**
 * `pop demo`: the main job. Starts an embedded nats-server, the coordinator and the shipped tiny
 * peers as separate processes, runs the iterations with progress on the terminal, and writes
 * report.json, metrics.jsonl, tensorboard/, pairs-iter<N>.jsonl, pairs-iter<N>.parquet (+ the
 * dataset card README.md) and report.html to the output directory.
 */
import { timeToGo } from "../cli/progress.ts";
import { familyOfQuestion } from "../../actors/models/tiny/world.ts";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureTopology, getImage, openBlobs, type MessageOf } from "../../protocol/mod.ts";
import { UsageError, type Flags } from "../cli/args.ts";
import { connectNats } from "../cli/connect.ts";
import { onStopSignals, signalExitCode } from "../cli/shutdown.ts";
import { maxStoreFitting } from "../ops/account.ts";
import { COORDINATOR_IDENTITY, OBSERVER_IDENTITY, seedFileOf, writeCreds } from "../ops/creds.ts";
import { createExperiment, experimentConfig, loadTinyPool, type DemoSettings } from "../ops/experiment.ts";
import { NatsServer } from "../ops/nats-server.ts";
import { shippedCheckpoint, shippedMembers } from "../../actors/models/tiny/checkpoints.ts";
import { PopProcess } from "../cli/processes.ts";
import { collectRun } from "../observe/report/collect.ts";
import { formatTable, writeReport, type Report } from "../observe/report/report.ts";
import { formatHostile } from "../observe/report/hostile.ts";
import { describeOutputs } from "../observe/report/outputs.ts";
import { exportPairs } from "../observe/export/export.ts";
import { ImageFiles } from "../observe/export/images.ts";
import { readVerdicts } from "../observe/export/read.ts";
import { DEMO_DEFAULTS } from "./defaults.ts";
import { RunTimeline, formatTimeline } from "../observe/timeline.ts";
import { followExperiment } from "../observe/watch/follow.ts";
import { judgementsIn } from "../observe/watch/state.ts";
import { iterationLine, watchCommands, type OpenedIteration } from "./progress.ts";
import { ResultsRun, commandLine, fence } from "../observe/results/write.ts";
import { HOSTILE_PEER, UNTRUSTED_AGGREGATE, aggregateRule, hostileMember, hostileMode } from "./hostile-member.ts";
import { HOSTILE_JUDGES } from "../../actors/models/hostile.ts";
import { AGGREGATES } from "../../protocol/mod.ts";
import { judgesPerAuthorWarnings } from "../../coordinator/voting.ts";
import { writeTinyBenchmark } from "../../actors/models/tiny/bench-export.ts";
import { PYTHON_MEMBER, torchPeerActorArgs, torchPython } from "./python-member.ts";

export const demoHelp = `pop demo [options]        (npm run demo)

Runs the Panel-of-Peers loop on this machine: an embedded nats-server, the coordinator and the
shipped tiny vision-language models as separate processes. Prints progress and the
member x suite x iteration table; writes report.json, report.html and the pairs: as
pairs-iter<N>.jsonl (images in images/) and as pairs-iter<N>.parquet with a dataset card
(README.md; see pop export).
The run's scalars go to metrics.jsonl and TensorBoard event files (tensorboard/<member>/).

  --out DIR            output directory                                     default: runs/demo-<time>
  --iterations N       PoP iterations                                        default: ${DEMO_DEFAULTS.iterations}
  --prompts N          unlabeled prompts per iteration                       default: ${DEMO_DEFAULTS.promptsPerIteration}
  --k N                candidates per prompt and member                      default: ${DEMO_DEFAULTS.k}
  --temperature T      sampling temperature                                  default: ${DEMO_DEFAULTS.temperature}
  --peers A,B,C        members to run (${PYTHON_MEMBER}: the PyTorch member)           default: every checkpoint
  --with-python        add the PyTorch member '${PYTHON_MEMBER}' (actors/process-peer/torch_peer, a
                       CNN + transformer lacking counting) as a process peer; needs torch for
                       /usr/bin/python3 (or POP_PYTHON)
  --checkpoint-dir D   where members' <name>.bin checkpoints are             default: the shipped ones
  --min-chosen X       keep a pair only if chosen scores >= X                default: ${DEMO_DEFAULTS.overrides.voting.minChosen}
  --min-margin X       ... and chosen - rejected >= X                        default: ${DEMO_DEFAULTS.overrides.voting.minMargin}
  --judges-per-author M  judges of each author (a number, or all)         default: all
  --pool-seed N        seed of the unlabeled prompt pool                     default: ${DEMO_DEFAULTS.poolSeed}
  --hostile MODE       add a member '${HOSTILE_PEER}' that judges adversarially: ${HOSTILE_JUDGES.join(", ")}
                       (answers with a shipped checkpoint; see npm run demo:hostile)
  --aggregate RULE     ${`voting rule: ${AGGREGATES.join(", ")}`.padEnd(53)} default: ${DEMO_DEFAULTS.overrides.voting.aggregate}, ${UNTRUSTED_AGGREGATE} with --hostile
  --timeout-min N      give up after this many minutes                       default: 30
  --log-format F       the processes' logs (in <out>/logs): pretty or json   default: pretty
  --results DIR        where the results file goes (none: no file)           default: docs/results`;

export async function runDemo(flags: Flags): Promise<Report> {
  const started = Date.now();
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const out = resolve(flags.string("out") ?? join("runs", `demo-${stamp}`));
  const settings: DemoSettings = {
    experiment: "demo",
    iterations: flags.int("iterations", { min: 1, max: 50 }) ?? DEMO_DEFAULTS.iterations,
    promptsPerIteration: flags.int("prompts", { min: 1, max: 100_000 }) ?? DEMO_DEFAULTS.promptsPerIteration,
    k: flags.int("k", { min: 1, max: 64 }) ?? DEMO_DEFAULTS.k,
    temperature: flags.number("temperature", { min: 0, max: 10 }) ?? DEMO_DEFAULTS.temperature,
    poolSeed: flags.int("pool-seed", { min: 0 }) ?? DEMO_DEFAULTS.poolSeed,
    minPeers: 0,
  };
  const checkpointDir = flags.string("checkpoint-dir");
  const members = shippedMembers(checkpointDir);
  const listed = (flags.string("peers")?.split(",") ?? members).map((p) => p.trim()).filter(Boolean);
  // The PyTorch member joins by --with-python or by its name in --peers.
  const withPython = flags.bool("with-python") || listed.includes(PYTHON_MEMBER);
  const peers = listed.filter((p) => p !== PYTHON_MEMBER);
  // A panel with the PyTorch member has results of its own (demo-python-latest.md), beside the tiny panel's.
  const results = new ResultsRun(withPython ? "demo-python" : "demo", commandLine("demo", process.argv.slice(3)), flags.string("results"));
  const timeoutMs = (flags.number("timeout-min", { min: 0.1 }) ?? 30) * 60_000;
  const logFormat = flags.logFormat();
  const hostile = hostileMode(flags.string("hostile"), demoHelp);
  const voting = {
    ...DEMO_DEFAULTS.overrides.voting,
    aggregate: aggregateRule(flags.string("aggregate"), hostile !== undefined, DEMO_DEFAULTS.overrides.voting.aggregate, demoHelp),
    minChosen: flags.number("min-chosen", { min: 0, max: 1 }) ?? DEMO_DEFAULTS.overrides.voting.minChosen,
    minMargin: flags.number("min-margin", { min: 0, max: 1 }) ?? DEMO_DEFAULTS.overrides.voting.minMargin,
  };
  const judgesPerAuthor = flags.countOrAll("judges-per-author") ?? "all";
  flags.rejectUnknown();
  if (peers.length < 2) throw new UsageError(`a panel needs at least 2 members; found: ${members.join(", ") || "none"}`, demoHelp);
  for (const p of peers) if (!shippedCheckpoint(p, checkpointDir)) throw new UsageError(`'${p}' has no checkpoint (members: ${members.join(", ")})`, demoHelp);
  // The hostile member joins the panel like any other; only its judging differs.
  const extra = hostile && hostileMember(hostile, peers, checkpointDir, demoHelp);
  if (extra) peers.push(extra.peer);
  const checkpointOf = (peer: string) => (peer === extra?.peer ? extra.checkpoint : shippedCheckpoint(peer, checkpointDir)!);
  // Checked before anything starts: a missing torch is one clear line, not a crashed peer later.
  const python = withPython ? torchPython() : undefined;
  if (python) peers.push(PYTHON_MEMBER);
  settings.minPeers = peers.length;

  mkdirSync(join(out, "logs"), { recursive: true });
  const say = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
  say(`Panel-of-Peers demo: ${peers.join(", ")}; ${settings.iterations} iterations x ${settings.promptsPerIteration} prompts, k=${settings.k}`);
  if (extra) say(`${extra.peer} judges as a hostile judge (${extra.mode}); voting rule: ${voting.aggregate}`);
  // Every member judges every other one unless sampled: a robust rule needs enough of them.
  for (const w of judgesPerAuthorWarnings(voting, judgesPerAuthor === "all" ? peers.length - 1 : judgesPerAuthor)) say(`warning: ${w}`);
  say(`output: ${out}`);

  // Credentials on, as in a real deployment: each process can speak only as itself.
  // Its account's store limit fits this machine's disk, or the server would not start JetStream.
  const creds = writeCreds({ experiment: settings.experiment, peers, out: join(out, "creds"), observer: true, maxStore: maxStoreFitting(out) });
  const keyOf = (identity: string) => seedFileOf(creds.dir, identity);
  const server = await NatsServer.start({ dir: join(out, "nats"), cleanup: false, include: [creds.authConf], tiedToThisProcess: true });
  say(
    `nats-server ${server.url} (pid ${server.pid}, data in ${join(out, "nats")}; per-process keys in ${creds.dir}, watch with --nkey ${keyOf(OBSERVER_IDENTITY)})`,
  );
  // The commands to paste, whole: pop on PATH after `npm link` (or `npm run pop -- ...` here).
  say("follow it from another terminal (pop is on PATH after `npm link`; or npm run pop -- ...):");
  for (const line of watchCommands(server.url, keyOf(OBSERVER_IDENTITY), settings.experiment)) say(`  ${line}`);
  const children: PopProcess[] = [];
  let nc: NatsConnection | undefined;
  // Once only: a signal's stop and the `finally` below both call it, and a second SIGTERM to a
  // child that is already leaving would make it exit at once.
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      // Peers and coordinator first (they leave and hand back their work through the server), then the server.
      await Promise.all(children.map((c) => c.stop()));
      await nc?.close().catch(() => undefined);
      await server.stop();
    })());
  // Children run in process groups of their own (a terminal's Ctrl-C reaches only this process),
  // so this process forwards the stop. A later second signal stops everything at once.
  const stopListening = onStopSignals(
    (signal) => {
      say("interrupted; stopping the panel, the coordinator and the server");
      stopAll().finally(() => process.exit(signalExitCode(signal)));
    },
    (signal) => {
      say("interrupted again; killing the panel, the coordinator and the server");
      for (const c of children) c.child.kill("SIGKILL");
      void server.kill();
      process.exit(signalExitCode(signal));
    },
  );

  try {
    nc = await connectNats({ servers: server.url, auth: { nkey: keyOf(COORDINATOR_IDENTITY) } }, "pop-demo");
    await ensureTopology(nc);
    await loadTinyPool(nc, settings.poolSeed, settings.iterations * settings.promptsPerIteration, settings.experiment);
    const { config } = await createExperiment(nc, experimentConfig(settings, { ...DEMO_DEFAULTS.overrides, voting, judging: { judgesPerAuthor } }));
    const common = ["--server", server.url, "--experiment", config.experiment, "--log-format", logFormat];
    children.push(new PopProcess("coordinator", ["coordinator", ...common, "--nkey", keyOf(COORDINATOR_IDENTITY)], join(out, "logs", "coordinator.log")));
    for (const peer of peers) {
      // The PyTorch member's actor benchmarks it on the suites the tiny members evaluate themselves on (100 items each).
      const model =
        peer === PYTHON_MEMBER && python
          ? torchPeerActorArgs(python, { workDir: join(out, "work"), bench: writeTinyBenchmark(join(out, "bench"), 100) })
          : ["--checkpoint", checkpointOf(peer)];
      const args = ["actor", "--peer", peer, ...model, ...common, "--nkey", keyOf(peer), ...(peer === extra?.peer ? extra.args : [])];
      children.push(new PopProcess(peer, args, join(out, "logs", `${peer}.log`)));
    }
    say(`started coordinator and ${peers.length} peers as separate processes (logs in ${join(out, "logs")})`);
    const timeline = new RunTimeline();

    await followUntilDone(nc, config.experiment, peers, config.iterations, judgesPerAuthor, children, timeoutMs, say, timeline);
    // The report's steps each say what they do: together they take seconds, more on a busy machine.
    say("reading the run back from JetStream for the report");
    const run = await collectRun(nc, config.experiment);
    say(`writing the report: ${run.pairs.length} pairs with their images (report.json, report.html, JSONL, metrics, TensorBoard)`);
    const blobs = await openBlobs(nc);
    // One fetch per image for both: the JSONL's image files and the Parquet's embedded bytes.
    const images = new ImageFiles((ref) => getImage(blobs, ref).catch(() => undefined));
    // The breakdown as this follower measured it live, so report.json holds the numbers printed below.
    const report = await writeReport(out, run, images, familyOfQuestion, {
      timeline: { startedAt: started, endedAt: Date.now(), iterations: timeline.timings() },
      ...(extra ? { hostile: { [extra.peer]: extra.mode } } : {}),
    });
    say(`exporting the ${run.pairs.length} pairs as a Parquet dataset with the images embedded`);
    const verdicts = await readVerdicts(nc, config.experiment);
    await exportPairs(out, { experiment: config.experiment, pairs: run.pairs, verdicts, config }, { format: "parquet", images, suiteOf: familyOfQuestion });
    process.stdout.write("\n" + formatTable(report) + "\n\n");
    const first = report.iterations[0]!;
    const last = report.iterations[report.iterations.length - 1]!;
    const gain = `panel average ${(first.panelAverage * 100).toFixed(1)} -> ${(last.panelAverage * 100).toFixed(1)} (${last.panelAverage >= first.panelAverage ? "+" : ""}${((last.panelAverage - first.panelAverage) * 100).toFixed(1)} points) in ${((Date.now() - started) / 60000).toFixed(1)} min`;
    say(gain);
    if (report.hostile) say(formatHostile(report.hostile));
    const totalMs = Date.now() - started;
    const timings = formatTimeline(timeline.timings(), totalMs);
    process.stdout.write("\n" + timings + "\n");
    results.write({
      summary: `${python ? "The shipped tiny panel and the PyTorch member" : "The shipped tiny panel"}${extra ? ` with ${extra.peer} judging as a hostile judge (${extra.mode})` : ""}, ${gain}.${report.hostile ? ` Honest members' mean gain: ${(report.hostile.meanGain * 100).toFixed(1)} points.` : ""}`,
      settings: {
        members: peers.join(", "),
        iterations: settings.iterations,
        "prompts per iteration": settings.promptsPerIteration,
        k: settings.k,
        temperature: settings.temperature,
        "pool seed": settings.poolSeed,
        "min chosen": voting.minChosen,
        "min margin": voting.minMargin,
        "voting rule": voting.aggregate,
        ...(extra ? { "hostile member": `${extra.peer} (${extra.mode}, answering with ${extra.checkpoint.replace(/^.*\//, "")})` } : {}),
        training: JSON.stringify(DEMO_DEFAULTS.overrides.training),
        checkpoints: checkpointDir ?? "the shipped ones",
      },
      sections: [
        { heading: "Accuracy (%) on the held-out suites", markdown: fence(formatTable(report)) },
        { heading: "Where the time went", markdown: fence(timings) },
      ],
    });
    process.stdout.write(`\nin ${out}:\n${describeOutputs(out).join("\n")}\nopen ${join(out, "report.html")} in a browser for the plots and example pairs.\n`);
    return report;
  } finally {
    await stopAll();
    stopListening();
  }
}

/** Prints the run's progress from the streams until every member has evaluated the last iteration and said it is done with it. */
async function followUntilDone(
  nc: NatsConnection,
  experiment: string,
  peers: string[],
  iterations: number,
  judgesPerAuthor: number | "all",
  children: PopProcess[],
  timeoutMs: number,
  say: (l: string) => void,
  timeline: RunTimeline,
): Promise<void> {
  const evaluated = new Map<number, Set<string>>();
  const counts = new Map<string, number>();
  // Done once every member has evaluated the last iteration and said it is done with it (a
  // member evaluates before it publishes training_done; the time breakdown needs both).
  const trainedLast = new Set<string>();
  let done = false;
  const checkDone = () => {
    if ((evaluated.get(iterations)?.size ?? 0) >= peers.length && trainedLast.size >= peers.length) done = true;
  };
  let failure: Error | undefined;
  // Training shows in the members' records (steps done of total), not in any stream.
  const training = new Map<string, { iteration: number; done: number; total: number; since: number; at: number }>();
  const count = (kind: string, iteration: number, n = 1) => counts.set(`${kind}:${iteration}`, (counts.get(`${kind}:${iteration}`) ?? 0) + n);
  const opened = new Map<number, OpenedIteration>();
  const joined = new Set<string>();
  const control = (e: MessageOf<"control">) => {
    switch (e.event) {
      case "peer_joined":
        joined.add(e.peer);
        say(`  ${e.peer} joined`);
        break;
      case "iteration_opened":
        timeline.iterationOpened(e.iteration, e.at);
        opened.set(e.iteration, { iteration: e.iteration, prompts: e.prompts, peers: e.peers, openedAt: e.at });
        say(`iteration ${e.iteration} opened: ${e.prompts} prompts, panel ${e.peers.join(", ")}`);
        break;
      case "iteration_closed":
        timeline.iterationClosed(e.iteration, e.at);
        say(`iteration ${e.iteration} voted: ${e.voted} prompts -> ${e.pairs} preference pairs; members train with SimPO`);
        break;
      case "training_done":
        timeline.trained(e.iteration, e.peer, e.at, e.result.ms);
        if (e.iteration === iterations) {
          trainedLast.add(e.peer);
          checkDone();
        }
        say(
          `  ${e.peer} trained on iteration ${e.iteration}: ${e.result.pairs} pairs, ${e.result.steps} steps, loss ${e.result.lossFirst.toFixed(3)} -> ${e.result.lossLast.toFixed(3)}, ${(e.result.ms / 1000).toFixed(1)} s`,
        );
        break;
      case "peer_left":
        say(`  ${e.peer} left (${e.reason})`);
        break;
      case "experiment_done":
        say(`experiment done after ${e.iterations} iterations`);
        break;
      case "gave_up":
        say(`  ${e.peer} gave up on ${e.work === "answer" ? "answering" : `judging ${e.author}'s answers to`} ${e.promptId}: ${e.reason}`);
        break;
    }
  };
  // What pop watch and pop dashboard follow, the same way: admitted messages only (what a
  // consumer would refuse is the coordinator's to dead-letter; progress goes on).
  const following = await followExperiment(nc, experiment, {
    message(m) {
      switch (m.type) {
        case "candidates":
          count("cand", m.iteration);
          timeline.candidate(m.iteration, m.createdAt);
          break;
        case "verdict":
          count("judgement", m.iteration, judgementsIn(m));
          timeline.verdict(m.iteration, m.createdAt);
          break;
        case "pair":
          count("pair", m.iteration);
          break;
        case "evaluation": {
          timeline.evaluated(m.iteration, m.peer, m.ms);
          const set = evaluated.get(m.iteration) ?? new Set();
          set.add(m.peer);
          evaluated.set(m.iteration, set);
          const suites = Object.entries(m.suites)
            .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}`)
            .join(", ");
          say(`  eval  iteration ${m.iteration}  ${m.peer.padEnd(10)} average ${(m.average * 100).toFixed(1)}  (${suites})`);
          checkDone();
          break;
        }
        case "control":
          control(m);
          break;
      }
    },
    member(_key, m) {
      if (!m) return;
      if (m.activity?.doing !== "training") {
        training.delete(m.peer);
        return;
      }
      const prev = training.get(m.peer);
      const since = prev && prev.iteration === m.activity.iteration ? prev.since : Date.now();
      training.set(m.peer, { ...m.activity, since, at: Date.now() });
    },
  });
  const trainingLine = () => {
    const now = Date.now();
    const parts = [...training.entries()].filter(([, t]) => t.total > 0 && now - t.at < 15_000).sort(([a], [b]) => a.localeCompare(b));
    if (parts.length === 0) return undefined;
    // ETA from each member's own pace since it started this training; the slowest decides.
    // (A member's first steps include its start-up, so its pace is read after five.)
    const eta = Math.max(...parts.map(([, t]) => (t.done >= 5 ? ((now - t.since) / t.done) * (t.total - t.done) : Infinity)));
    return `  training iteration ${parts[0]![1].iteration}: ${parts.map(([p, t]) => `${p} ${t.done}/${t.total}`).join(", ")} steps${Number.isFinite(eta) ? `, ${timeToGo(eta)}` : ""}`;
  };
  const deadline = Date.now() + timeoutMs;
  let lastAt = 0;
  while (!done) {
    for (const c of children) {
      // The coordinator leaves by itself once the experiment is done, maybe before the last
      // members' events reach this follower: that exit is expected, the wait goes on.
      const finished = c.name === "coordinator" && c.child.exitCode === 0;
      if (!c.running && !finished) failure = new Error(`${c.name} exited unexpectedly; last lines of ${c.logFile}:\n${c.logTail()}`);
    }
    if (failure) break;
    if (Date.now() > deadline) {
      failure = new Error(`the demo did not finish within ${Math.round(timeoutMs / 60000)} min; see the logs in ${children[0]?.logFile.replace(/[^/]+$/, "")}`);
      break;
    }
    const open = opened.get(Math.max(0, ...opened.keys()));
    // A line at least every 10 s in every phase (the same line again says it is still there).
    if (Date.now() - lastAt > 10_000) {
      let line: string;
      if (open) {
        const n = open.iteration;
        const done = { candidates: counts.get(`cand:${n}`) ?? 0, judgements: counts.get(`judgement:${n}`) ?? 0, pairs: counts.get(`pair:${n}`) ?? 0 };
        line = trainingLine() ?? iterationLine(open, done, judgesPerAuthor, Date.now());
      } else {
        const waiting = peers.filter((p) => !joined.has(p));
        line = `  starting: ${joined.size} of ${peers.length} members joined${waiting.length ? ` (loading ${waiting.join(", ")})` : ""}`;
      }
      say(line);
      lastAt = Date.now();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await following.stop();
  if (failure) throw failure;
}
