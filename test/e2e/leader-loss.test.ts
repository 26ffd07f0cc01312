/**
 * Two coordinator processes for one panel: the leader is SIGKILLed mid-iteration, the standby
 * takes over within a bounded time (measured and printed) and the experiment finishes with every
 * prompt's pair exactly once, no verdict counted twice, and nothing refused as a stale leader's.
 */
import { describe, expect, it } from "vitest";
import { BUCKETS, FenceView, STREAMS, readRecord, readStored, stateKeys, subjects } from "../../protocol/mod.ts";
import { Kvm } from "@nats-io/kv";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const EXP = "leader";
const LEASE_MS = 1500;

describe("losing the coordinator's leader", () => {
  it("a standby takes over within a bounded time and the run ends with every pair once", async () => {
    const prompts = 24;
    await using panel = await startPanel(
      { experiment: EXP, iterations: 2, promptsPerIteration: prompts, k: 2, temperature: 1, poolSeed: 28, minPeers: 3 },
      {
        voting: VOTE_EVERY_PROMPT,
        heartbeat: { intervalMs: 500, lapseMs: 60_000 },
        openPrompts: 8,
        coordination: { leaseMs: LEASE_MS },
      },
      { actorArgs: ["--batch", "4"] },
    );
    const kv = await new Kvm(panel.nc).open(BUCKETS.state);
    const lease = () => readRecord(kv, stateKeys.lease(EXP), "lease");
    const ckpt = await panel.randomCheckpoints(["ann", "ben", "cat"]);
    const a = panel.startCoordinator(["--instance", "coord-a"]);
    await panel.waitFor("coord-a to lead", async () => (await lease())?.instance === "coord-a", 60_000);
    const b = panel.startCoordinator(["--instance", "coord-b"]);
    for (const peer of ["ann", "ben", "cat"]) panel.startActor(peer, ckpt[peer]!);

    await panel.waitFor("a few pairs of iteration 1", async () => (await panel.stored("pair", "pair")).length >= 3, 120_000);
    expect((await lease())?.instance).toBe("coord-a");
    const killedAt = performance.now();
    await a.kill();
    const taken = await panel.waitFor(
      "coord-b to take over",
      async () => {
        const l = await lease();
        return l?.instance === "coord-b" ? l : undefined;
      },
      30_000,
    );
    const takeoverMs = performance.now() - killedAt;
    console.log(`standby took over ${Math.round(takeoverMs)} ms after the leader was SIGKILLed (lease ${LEASE_MS} ms)`);
    expect(taken.token).toBe(2);
    // Bounded: the lease plus the standby's polling and a loaded machine's slack.
    expect(takeoverMs).toBeLessThan(LEASE_MS * 4 + 2000);

    await panel.waitFor("the experiment to finish", async () => (await panel.control()).some((e) => e.event === "experiment_done"), 180_000);
    // The standby carried on to the end: still running, or ended cleanly (a coordinator exits 0 once
    // the experiment is done, which may come before this check).
    expect(b.running || (await b.exited) === 0, `coord-b:\n${b.logTail()}`).toBe(true);
    const fence = await FenceView.read(kv, EXP);
    const { messages: pairs, skipped } = await readStored(panel.nc, STREAMS.pairs.name, subjects.all(EXP, "pair"), "pair", { fence });
    expect(skipped).toEqual([]);
    for (const it of [1, 2]) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      expect(ids).toHaveLength(prompts);
      expect(new Set(ids).size).toBe(prompts);
    }
    const verdicts = await panel.stored("verdict", "verdict");
    const keys = verdicts.flatMap((v) => v.authors.map((au) => `${v.iteration}|${v.promptId}|${v.judge}|${au}`));
    expect(new Set(keys).size).toBe(keys.length);
    const done = (await panel.control())
      .filter((e) => e.event === "training_done")
      .map((e) => `${(e as { peer: string }).peer}:${(e as { iteration: number }).iteration}`);
    expect(done.sort()).toEqual(["ann:1", "ann:2", "ben:1", "ben:2", "cat:1", "cat:2"]);
  }, 300_000);
});
