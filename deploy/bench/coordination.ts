/**
 * Benchmark of the coordination layer alone: how many prompts per second the coordinator takes
 * from candidates and verdicts to published pairs, with synthetic peers that answer and judge
 * instantly (no model), on a real nats-server. The method needs ~3–4 prompts/s for a whole
 * panel of 7B models; the coordinator must be far above that.
 *
 *   npx tsx deploy/bench/coordination.ts [--peers 3,16] [--prompts 1000] [--k 4]
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { DEMO_DEFAULTS } from "../defaults.ts";
import { Coordinator } from "../../coordinator/coordinator.ts";
import {
  BUCKETS, PROTOCOL_VERSION, STREAMS, encode, ensureTopology, memberKeys, publishMessage, readStored, subjects, type Prompt,
  jetStreamOf, kvmOf,
} from "../../protocol/mod.ts";
import { Flags } from "../args.ts";
import { connectNats } from "../connect.ts";
import { createExperiment, experimentConfig, loadTinyPool } from "../experiment.ts";
import { createLogger } from "../log.ts";
import { NatsServer } from "../nats-server.ts";

const flags = new Flags(process.argv.slice(2), `usage: npm run bench:coordination [-- options]

  --peers A,B       panel sizes to measure       default: 3,16
  --prompts N       prompts per run              default: 1000
  --k N             candidates per member        default: 4`);
const panelSizes = (flags.string("peers") ?? "3,16").split(",").map(Number);
const prompts = flags.int("prompts", { min: 1 }) ?? 1000;
const k = flags.int("k", { min: 1 }) ?? 4;
flags.rejectUnknown();

async function runOnce(peers: number) {
  const server = await NatsServer.start();
  const nc = await connectNats(server.url, "bench");
  const log = createLogger("coordinator", { level: "warn" });
  try {
    await ensureTopology(nc);
    await loadTinyPool(nc, 7, prompts, "bench");
    const exp = `bench${peers}`;
    await createExperiment(nc, experimentConfig(
      { experiment: exp, iterations: 1, promptsPerIteration: prompts, k, temperature: 1, poolSeed: 7, minPeers: peers },
      { voting: DEMO_DEFAULTS.overrides.voting, heartbeat: { intervalMs: 1000, lapseMs: 600_000 } },
    ));
    const names = Array.from({ length: peers }, (_, i) => `p${i}`);
    const members = await kvmOf(nc).open(BUCKETS.members);
    for (const peer of names) {
      await members.put(memberKeys.instance(exp, peer, "i"), encode({
        v: PROTOCOL_VERSION, type: "member", experiment: exp, peer, instance: "i", backend: "synthetic", modelVersion: "m", host: "h", pid: 1, joinedAt: Date.now(), heartbeatAt: Date.now(), state: "active",
      }));
    }
    const coordinator = new Coordinator({ nc, experiment: exp, log });
    const abort = new AbortController();
    const running = coordinator.run(abort.signal);
    const js = jetStreamOf(nc);
    // Wait for the prompts, then answer and judge them all as fast as the server takes them.
    let ps: Prompt[] = [];
    while (ps.length < prompts) {
      ps = (await readStored(nc, STREAMS.prompts.name, subjects.all(exp, "prompt"), "prompt")).messages;
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = performance.now();
    let sent = 0;
    for (let i = 0; i < ps.length; i += 50) {
      await Promise.all(ps.slice(i, i + 50).map((p) => answerAndJudge(js, exp, p, names).then((n) => (sent += n))));
    }
    const sentMs = performance.now() - t0;
    // Done when the coordinator has voted every prompt and closed the iteration.
    while (!(await readStored(nc, STREAMS.control.name, subjects.control(exp, "iteration_closed"), "control")).messages.length) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const ms = performance.now() - t0;
    abort.abort();
    await running;
    const pairs = (await readStored(nc, STREAMS.pairs.name, subjects.all(exp, "pair"), "pair")).messages.length;
    return { peers, prompts, k, messages: sent, perPrompt: sent / prompts, sentMs, ms, pairs, rate: prompts / (ms / 1000) };
  } finally {
    await nc.close();
    await server.dispose();
  }
}

/** Every peer answers the prompt; every other peer judges each batch (one verdict message per batch). */
async function answerAndJudge(js: JetStreamClient, exp: string, p: Prompt, peers: string[]): Promise<number> {
  let n = 0;
  await Promise.all(peers.map(async (author, a) => {
    await publishMessage(js, {
      v: PROTOCOL_VERSION, type: "candidates", experiment: exp, iteration: p.iteration, promptId: p.promptId, question: p.question, images: p.images,
      author, modelVersion: "m", sampling: { k, temperature: 1, seed: 1 }, candidates: Array.from({ length: k }, (_, i) => ({ candidateId: `${p.promptId}:${author}:${i}`, text: `answer ${i}` })), createdAt: Date.now(),
    });
    n++;
    await Promise.all(peers.filter((j) => j !== author).map(async (judge) => {
      // The first candidate of the first author is best, the last of the last worst: one pair per prompt.
      const s = (i: number) => (a === 0 && i === 0 ? 5 : a === peers.length - 1 && i === k - 1 ? 1 : 3);
      await publishMessage(js, {
        v: PROTOCOL_VERSION, type: "verdict", experiment: exp, iteration: p.iteration, promptId: p.promptId, judge, authors: [author], modelVersion: "m",
        scores: Array.from({ length: k }, (_, i) => ({ candidateId: `${p.promptId}:${author}:${i}`, likert: { helpfulness: s(i), correctness: s(i), coherence: s(i), complexity: s(i), verbosity: s(i) } })),
        createdAt: Date.now(),
      });
      n++;
    }));
  }));
  return n;
}

console.log(`coordination benchmark: ${prompts} prompts, k=${k}, synthetic peers on one nats-server (this machine: ${(await import("node:os")).cpus().length} cores)`);
for (const peers of panelSizes) {
  const r = await runOnce(peers);
  console.log(
    `peers=${String(r.peers).padStart(2)}  messages/prompt=${r.perPrompt.toFixed(0).padStart(3)}  published in ${(r.sentMs / 1000).toFixed(1)} s` +
    `  all voted and closed in ${(r.ms / 1000).toFixed(1)} s  => ${r.rate.toFixed(0)} prompts/s  (${r.pairs} pairs)`,
  );
}
process.exit(0);
