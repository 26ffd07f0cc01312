/** `pop actor`: start one peer process and join an experiment. */
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { PeerActor } from "../../actors/actor.ts";
import { WorkerBackend } from "../../actors/backend/worker-backend.ts";
import { NAME_PATTERN } from "../../protocol/mod.ts";
import { connectNats, onShutdown } from "../connect.ts";
import { createLogger } from "../log.ts";
import { shippedCheckpoint } from "../panel.ts";
import { UsageError, type Flags } from "../args.ts";

export const actorHelp = `pop actor --peer NAME [options]

Starts a peer process: it joins the experiment, answers prompts, judges its peers' candidates,
trains with SimPO on each iteration's pairs and evaluates itself. Ctrl-C leaves cleanly.
Start more processes with the same --peer (and another --instance) to add replicas.

  --peer NAME          model identity (a-z, 0-9, '-', '_')                  required
  --experiment NAME    experiment to join                                   default: demo
  --server URL         NATS server(s), comma-separated                       default: $NATS_URL or nats://127.0.0.1:4222
  --backend KIND       model backend: tiny                                   default: tiny
  --checkpoint FILE    weights; default: the shipped checkpoint named like --peer
  --instance NAME      this process's name among the peer's replicas        default: <host>-<pid>
  --batch N            prompts/candidate batches per model call             default: 32
  --bench-items N      items per benchmark suite when evaluating            default: the backend's
  --log-format F       text or json                                          default: text`;

export async function runActor(flags: Flags): Promise<void> {
  const peer = flags.string("peer");
  if (!peer) throw new UsageError("--peer is required", actorHelp);
  if (!NAME_PATTERN.test(peer)) throw new UsageError(`--peer '${peer}' is not a valid name: use a-z, 0-9, '-' or '_'`, actorHelp);
  const experiment = flags.string("experiment") ?? "demo";
  const backendKind = flags.string("backend") ?? "tiny";
  if (backendKind !== "tiny") throw new UsageError(`--backend '${backendKind}' is not available in this build; use 'tiny'`, actorHelp);
  const checkpoint = flags.string("checkpoint") ?? shippedCheckpoint(peer);
  if (!checkpoint) throw new UsageError(`no --checkpoint given and '${peer}' is not a shipped member; pass --checkpoint FILE`, actorHelp);
  if (!existsSync(checkpoint)) throw new UsageError(`checkpoint ${checkpoint} does not exist`, actorHelp);
  const instance = flags.string("instance") ?? `${hostname().toLowerCase().replace(/[^a-z0-9_-]/g, "-").slice(0, 40)}-${process.pid}`;
  const batchSize = flags.int("batch", { min: 1, max: 1024 });
  const benchItems = flags.int("bench-items", { min: 1 });
  const format = flags.logFormat();
  const server = flags.server();
  flags.rejectUnknown();
  const log = createLogger(peer, { format });
  const nc = await connectNats(server, `pop-actor-${peer}`, log);
  log.info({ checkpoint }, "loading model");
  const backend = await WorkerBackend.start({ kind: "tiny", weights: checkpoint, benchItems });
  const actor = new PeerActor({ nc, experiment, peer, instance, backend, backendKind, log, batchSize });
  onShutdown(async (signal) => {
    log.info({ signal }, "leaving");
    await actor.stop();
    await backend.dispose();
    await nc.drain();
  });
  await actor.start();
}
