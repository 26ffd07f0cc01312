import { jetstream } from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { ensureTopology, openManager, publishMessage, readStored, STREAMS, subjects, type MessageOf } from "../../protocol/mod.ts";
import { sampleMessages } from "../support/messages.ts";
import { cleanup, connectTo, eventually, startCluster } from "../support/nats.ts";

describe("3-node JetStream cluster", () => {
  afterAll(cleanup);

  it("keeps R3 streams writable through a node crash and restart", async () => {
    const cluster = await startCluster(3);
    const nc = await connectTo(cluster.urls, "cluster-test");
    await eventually(
      async () => {
        await (await openManager(nc)).getAccountInfo();
        return true;
      },
      30_000,
      "JetStream meta leader",
    );
    const report = await eventually(() => ensureTopology(nc, { replicas: 3 }), 30_000, "topology on the cluster");
    expect(report.streams[STREAMS.prompts.name]).toBe("created");
    const jsm = await openManager(nc);
    const info = await jsm.streams.info(STREAMS.prompts.name);
    expect(info.config.num_replicas).toBe(3);
    // Every pop process ensures the topology without naming replicas: that must not lower them,
    // and asking for another number is refused.
    await ensureTopology(nc);
    for (const s of Object.values(STREAMS)) expect((await jsm.streams.info(s.name)).config.num_replicas).toBe(3);
    for (const b of ["KV_pop_state", "KV_pop_members", "OBJ_pop_blobs"]) expect((await jsm.streams.info(b)).config.num_replicas).toBe(3);
    await expect(ensureTopology(nc, { replicas: 1 })).rejects.toThrow(/3 replica\(s\), but 1 were asked for/);

    const js = jetstream(nc);
    const base = { ...sampleMessages().find((m) => m.type === "prompt")!, experiment: "cl1" } as MessageOf<"prompt">;
    for (let i = 0; i < 5; i++) await publishMessage(js, { ...base, promptId: `a${i}` });

    const leaderName = (await jsm.streams.info(STREAMS.prompts.name)).cluster!.leader!;
    const leader = cluster.nodes.find((n) => n.options.name === leaderName)!;
    await leader.kill();
    expect(leader.running).toBe(false);
    // Publishes fail while a new leader is elected, then go through; retries reuse the msgID.
    for (let i = 0; i < 5; i++) {
      await eventually(() => publishMessage(js, { ...base, promptId: `b${i}` }, { timeoutMs: 2000 }), 30_000, "publish after leader loss");
    }
    await leader.restart();
    expect(leader.running).toBe(true);
    await eventually(
      async () => {
        const i = await jsm.streams.info(STREAMS.prompts.name);
        return (i.cluster?.replicas ?? []).filter((r) => r.current).length === 2;
      },
      30_000,
      "restarted node to catch up",
    );
    // Nothing acknowledged is lost. A read right after the restart may be served by a replica
    // still catching up, so the complete set is awaited rather than expected at once.
    const all = ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "b3", "b4"];
    const ids = await eventually(
      async () => {
        const { messages } = await readStored(nc, STREAMS.prompts.name, subjects.all("cl1", "prompt"), "prompt");
        const got = messages.map((m) => m.promptId).sort();
        return got.length === all.length ? got : undefined;
      },
      30_000,
      "all ten prompts to be readable",
    );
    expect(ids).toEqual(all);
    expect((await jsm.streams.info(STREAMS.prompts.name)).state.messages).toBe(10);
  });
});
