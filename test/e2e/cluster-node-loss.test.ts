/**
 * The panel's own `pop` processes on a 3-node JetStream cluster started with the project's
 * launcher: every stream and bucket stays R3 although each process ensures the topology, and a
 * node killed mid-run does not stop it: the run finishes with every prompt's pair exactly once.
 *
 * On nats-server 2.9 a dead node stays a placement target for new ephemeral consumers for about
 * a minute, so half of the reads and followers created then never answer: the run depends on
 * protocol/reader/ (read-back and follow) trying again (it stalled before they did).
 */
import { describe, expect, it } from "vitest";
import { openManager, readStored, STREAMS, subjects } from "../../protocol/mod.ts";
import { eventually } from "../support/nats.ts";
import { ClusterNetwork } from "../support/networks.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const MEMBERS = ["ann", "ben", "cat"];
const PROMPTS = 16;

describe("a panel on a 3-node cluster", () => {
  it("keeps R3 and finishes with every pair once when a node dies", async () => {
    await using panel = await startPanel(
      { experiment: "clu", iterations: 2, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 23, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH },
      { network: await ClusterNetwork.start({ size: 3 }), benchItems: 10 },
    );
    const {
      nc,
      network: { cluster },
    } = panel;
    const ckpt = await panel.randomCheckpoints(MEMBERS);
    for (const m of MEMBERS) panel.startActor(m, ckpt[m]!);
    panel.startCoordinator();
    const processes = [...panel.processes.values()];

    const control = () => panel.control().catch(() => []);
    await eventually(async () => (await control()).some((e) => e.event === "iteration_opened"), 120_000, "iteration 1 to open");
    await cluster.nodes[1]!.kill();
    await eventually(async () => (await control()).some((e) => e.event === "experiment_done"), 240_000, "the run to finish without the node").catch((error) => {
      throw new Error(`${(error as Error).message}\n${panel.logTails(70)}`);
    });
    // Nobody died on the way: the actors still serve, the coordinator ended because the run did.
    for (const p of processes) expect(p.running || (await p.exited) === 0, `${p.name}:\n${p.logTail()}`).toBe(true);

    const jsm = await openManager(nc);
    for (const s of [...Object.values(STREAMS).map((x) => x.name), "KV_pop_state", "KV_pop_members", "OBJ_pop_blobs"]) {
      expect((await jsm.streams.info(s)).config.num_replicas, s).toBe(3);
    }
    const pairs = await eventually(async () => (await readStored(nc, STREAMS.pairs.name, subjects.all("clu", "pair"), "pair")).messages, 30_000, "the pairs");
    for (const it of [1, 2]) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      expect(ids).toHaveLength(PROMPTS);
      expect(new Set(ids).size).toBe(PROMPTS);
    }
  }, 360_000);
});
