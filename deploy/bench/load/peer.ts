/**
 * One benchmark peer as its own process: a real PeerActor (the whole actor path: inboxes, image
 * fetches, validation, publishing) over the load generator instead of a model.
 *
 *   node --import tsx deploy/bench/load/peer.ts --server URL --experiment E --peer P [--answer-ms N --judge-ms N --slots N]
 */
import { PeerActor } from "../../../actors/actor.ts";
import { Flags } from "../../cli/args.ts";
import { connectNats, onShutdown } from "../../cli/connect.ts";
import { createLogger } from "../../cli/log.ts";
import { LoadGeneratorBackend } from "./backend.ts";

const flags = new Flags(
  process.argv.slice(2),
  `usage: peer.ts [options]

  --server URL        nats-server
  --experiment NAME   experiment
  --peer NAME         peer name
  --answer-ms N       time per prompt answered (0: at once)
  --judge-ms N        time per candidate judged (0: at once)
  --slots N           items in flight at once`,
);
const server = flags.string("server")!;
const experiment = flags.string("experiment")!;
const peer = flags.string("peer")!;
const backend = new LoadGeneratorBackend(
  { answerMs: flags.number("answer-ms") ?? 0, judgeMs: flags.number("judge-ms") ?? 0, slots: flags.int("slots", { min: 1 }) ?? 1 },
  peer,
);
flags.rejectUnknown();

const log = createLogger(peer, { level: process.env.POP_LOG_LEVEL ?? "warn", context: { experiment, peer } });
const nc = await connectNats(server, `bench-${peer}`, log);
const actor = new PeerActor({ nc, experiment, peer, instance: `${peer}-1`, backend, backendKind: "load-generator", log });
onShutdown(async () => {
  await actor.stop();
  await nc.close();
  // The work this process's slots did, for the utilization bound.
  process.stdout.write(`${JSON.stringify({ peer, workMs: backend.workMs })}\n`);
});
await actor.start();
