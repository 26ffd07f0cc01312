/**
 * The panel's own `pop` processes on a JetStream cluster stretched across three sites, run from
 * the configs `pop site --layout cluster` writes (credentials on, one node per site, replicas
 * placed one per site): every stream and bucket comes out R3 without anyone asking, each process
 * dials its own site's node first, and a site's node killed mid-run does not stop the run: that
 * site's peer fails over to another site's node and keeps answering and judging, the run finishes
 * with every prompt's pair exactly once, and the node, restarted, catches up.
 *
 * On nats-server 2.9 a dead node stays a placement target for new ephemeral consumers for about
 * a minute, so half of the reads and followers created then never answer: the run depends on
 * protocol/reader/ (read-back and follow) trying again (it stalled before they did).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { COORDINATOR_IDENTITY } from "../../deploy/ops/creds.ts";
import { nodeName } from "../../deploy/ops/site-cluster.ts";
import { OBJECT_STORE, BUCKETS, natsSubjects, openManager, readStored, STREAMS, subjects, weightsBucket } from "../../protocol/mod.ts";
import { eventually } from "../support/nats.ts";
import { SiteClusterNetwork } from "../support/networks.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const SITE_OF = { [COORDINATOR_IDENTITY]: "a", ann: "a", ben: "b", cat: "c" };
const MEMBERS = ["ann", "ben", "cat"];
const PROMPTS = 16;
/** The site whose node dies: not the coordinator's (its lease and fencing are tested apart). */
const LOST = "b";

/** Every stream of the experiment: the protocol's, the buckets' and the peers' weights buckets. */
const ALL_STREAMS = [
  ...Object.values(STREAMS).map((x) => x.name),
  natsSubjects.kvStream(BUCKETS.members),
  natsSubjects.kvStream(BUCKETS.state),
  natsSubjects.objectStream(OBJECT_STORE),
  ...MEMBERS.map((m) => natsSubjects.objectStream(weightsBucket("clu", m))),
];

/** Where each replica of a stream is and whether it is current: leader first. */
async function placement(nc: NatsConnection, stream: string): Promise<{ name: string; current: boolean }[]> {
  const c = (await (await openManager(nc)).streams.info(stream)).cluster;
  return [{ name: c?.leader ?? "", current: Boolean(c?.leader) }, ...(c?.replicas ?? []).map((r) => ({ name: r.name, current: r.current && !r.offline }))];
}

describe("a panel on a cluster stretched across three sites", () => {
  it("keeps R3 one per site, fails a site's peer over when its node dies, finishes with every pair once, and the node catches up", async () => {
    await using panel = await startPanel(
      { experiment: "clu", iterations: 2, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 23, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH },
      { network: await SiteClusterNetwork.start({ experiment: "clu", siteOf: SITE_OF }), benchItems: 10 },
    );
    const { nc, network } = panel;
    const ckpt = await panel.randomCheckpoints(MEMBERS);
    for (const m of MEMBERS) panel.startActor(m, ckpt[m]!);
    panel.startCoordinator();
    const processes = [...panel.processes.values()];

    const control = () => panel.control().catch(() => []);
    await eventually(async () => (await control()).some((e) => e.event === "iteration_opened"), 120_000, "iteration 1 to open");
    await network.node(LOST).kill();
    await eventually(async () => (await control()).some((e) => e.event === "experiment_done"), 240_000, "the run to finish without the node").catch((error) => {
      throw new Error(`${(error as Error).message}\n${panel.logTails(70)}`);
    });
    // Nobody died on the way: the actors still serve, the coordinator ended because the run did.
    for (const p of processes) expect(p.running || (await p.exited) === 0, `${p.name}:\n${p.logTail()}`).toBe(true);

    const pairs = await eventually(async () => (await readStored(nc, STREAMS.pairs.name, subjects.all("clu", "pair"), "pair")).messages, 30_000, "the pairs");
    for (const it of [1, 2]) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      expect(ids).toHaveLength(PROMPTS);
      expect(new Set(ids).size).toBe(PROMPTS);
    }
    // The lost site's peer worked on through another site's node: it answered all of iteration 2,
    // which opened after its node had died.
    const cands = (await readStored(nc, STREAMS.candidates.name, subjects.all("clu", "cand"), "candidates")).messages;
    expect(new Set(cands.filter((c) => c.author === "ben" && c.iteration === 2).map((c) => c.promptId)).size).toBe(PROMPTS);

    // Every stream is R3 with one replica per site; after the restart the lost site's is current again.
    await network.node(LOST).restart();
    const sites = Object.values(SITE_OF).filter((s, i, all) => all.indexOf(s) === i);
    for (const stream of ALL_STREAMS) {
      expect((await (await openManager(nc)).streams.info(stream)).config.num_replicas, stream).toBe(3);
      await eventually(
        async () => {
          const where = await placement(nc, stream);
          expect(where.map((r) => r.name).sort(), stream).toEqual(sites.map(nodeName).sort());
          expect(
            where.every((r) => r.current),
            `${stream}: ${JSON.stringify(where)}`,
          ).toBe(true);
          return true;
        },
        60_000,
        `${stream} current on every site`,
      );
    }
  }, 360_000);
});
