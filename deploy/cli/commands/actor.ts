/** `pop actor`: start one peer process and join an experiment. */
import { hostname } from "node:os";
import { PeerActor } from "../../../actors/actor.ts";
import { BackendConfigError } from "../../../actors/models/registry.ts";
import type { Evaluator } from "../../../actors/models/contract.ts";
import { HOSTILE_JUDGES, withHostileJudge, type HostileJudge } from "../../../actors/models/hostile.ts";
import { NAME_PATTERN } from "../../../protocol/mod.ts";
import { BACKENDS } from "../backends.ts";
import { closeNats, connectNats, onShutdown } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { createLogger } from "../log.ts";
import { UsageError, type Flags } from "../args.ts";
import { peerEvaluator } from "../evaluators.ts";
import { actorRegistry } from "../../../actors/metrics.ts";
import { METRICS_OPTIONS_HELP, metricsOptions, startMetrics } from "../metrics-flags.ts";

export const actorHelp = `pop actor --peer NAME [--backend KIND] [options]

Starts a peer process: it joins the experiment, answers prompts, judges its peers' candidates,
trains with SimPO on each iteration's pairs (when its backend trains) and evaluates itself.
Ctrl-C leaves cleanly. Start more processes with the same --peer (and another --instance) to add
replicas.

  --peer NAME          model identity (a-z, 0-9, '-', '_')                  required
  --experiment NAME    experiment to join                                   default: demo
  --backend KIND       model backend: ${BACKENDS.kinds().join(", ")}${" ".repeat(Math.max(1, 38 - BACKENDS.kinds().join(", ").length))}default: tiny
  --instance NAME      this process's name among the peer's replicas        default: <host>-<pid>
  --batch N            prompts/candidate batches per model call             default: 32
  --log-format F       pretty or json                                        default: pretty
  --hostile-judge M    robustness experiments: corrupt this peer's verdicts: ${HOSTILE_JUDGES.join(", ")}

${NATS_OPTIONS_HELP}

${METRICS_OPTIONS_HELP}
  It shows messages in and out by type, dead letters by reason, model calls with their latency,
  requests and tokens by phase, training steps with the latest loss and margin, and the
  iteration being worked on (docs/running.md lists them).

Evaluation after each iteration (default: the backend's own benchmark, if it has one):
  --bench FILE         a benchmark JSONL (image, question, answer or choices, suite), exact match / choice letter
  --eval-cmd CMD       run CMD (sh -c) after each iteration; it writes per-suite scores as JSON to $POP_SCORES
  --eval-timeout-s S   time limit of --eval-cmd                              default: 86400

Backends and their options:
${BACKENDS.help()}

Example, a model served by vLLM on this host:
  pop actor --peer qwen --experiment exp1 --backend openai --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2-VL-7B-Instruct`;

export async function runActor(flags: Flags): Promise<void> {
  const peer = flags.string("peer");
  if (!peer) throw new UsageError("--peer is required", actorHelp);
  if (!NAME_PATTERN.test(peer)) throw new UsageError(`--peer '${peer}' is not a valid name: use a-z, 0-9, '-' or '_'`, actorHelp);
  const experiment = flags.string("experiment") ?? "demo";
  const kind = flags.string("backend") ?? "tiny";
  const format = flags.logFormat();
  const instance =
    flags.string("instance") ??
    `${hostname()
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, "-")
      .slice(0, 40)}-${process.pid}`;
  // Lines carry the iteration this peer last saw opened (or is training on), once it has joined.
  let actorRef: PeerActor | undefined;
  const log = createLogger(peer, { format, context: { experiment, peer, instance }, iteration: () => actorRef?.latestIteration });
  let plug;
  let spec;
  try {
    plug = BACKENDS.get(kind);
    spec = plug.configure(flags, { peer, log });
  } catch (error) {
    if (error instanceof BackendConfigError) throw new UsageError(error.message, actorHelp);
    throw error;
  }
  const batchSize = flags.int("batch", { min: 1, max: 1024 });
  const bench = flags.string("bench");
  const evalCmd = flags.string("eval-cmd");
  const evalTimeoutMs = (flags.number("eval-timeout-s", { min: 1 }) ?? 86_400) * 1000;
  const hostile = flags.string("hostile-judge");
  if (hostile !== undefined && !(HOSTILE_JUDGES as readonly string[]).includes(hostile)) {
    throw new UsageError(`--hostile-judge must be one of ${HOSTILE_JUDGES.join(", ")}`, actorHelp);
  }
  if (bench && evalCmd) throw new UsageError("--bench and --eval-cmd are alternatives; pass one", actorHelp);
  const nats = flags.nats();
  const server = nats.servers;
  const metricsAt = metricsOptions(flags);
  flags.rejectUnknown();
  // Up before the model loads, so a scrape can tell a slow start from a dead one.
  const metrics = await startMetrics(actorRegistry, metricsAt, log);
  const nc = await connectNats(nats, `pop-actor-${peer}`, log);
  log.info({ backend: kind }, "opening the model");
  let backend;
  try {
    backend = await plug.open(spec, { peer, log });
  } catch (error) {
    await nc.close();
    if (error instanceof BackendConfigError) throw new UsageError(error.message, actorHelp);
    throw error;
  }
  if (hostile) {
    log.warn({ mode: hostile }, "this peer judges as a hostile judge (--hostile-judge): its verdicts are corrupted on purpose");
    backend = withHostileJudge(backend, hostile as HostileJudge);
  }
  let evaluator: Evaluator | undefined;
  try {
    evaluator = await peerEvaluator({ backend, bench, evalCmd, evalTimeoutMs, peer, kind, spec, log });
  } catch (error) {
    await backend.dispose();
    await nc.close();
    throw error;
  }
  const actor = new PeerActor({ nc, experiment, peer, instance, backend, backendKind: kind, log, batchSize, evaluator });
  actorRef = actor;
  let stopping = false;
  onShutdown(async (signal) => {
    stopping = true;
    log.info({ signal }, "leaving");
    await actor.stop();
    // Ends a training in progress (its message was nak'ed by stop(), so it is redelivered).
    await backend.dispose();
    await closeNats(nc);
    await metrics?.close();
  });
  try {
    await actor.start();
  } catch (error) {
    // Stopped while starting: the start fails as its backend and connection close, which is no error.
    if (!stopping) throw error;
  }
}
