/**
 * The NATS server goes away while the coordinator is about to advance (members training, the next
 * iteration to open) and comes back: nothing ends, the run finishes, every pair exactly once.
 */
import { describe, expect, it } from "vitest";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

describe("a server outage at an iteration's end", () => {
  it("does not end the coordinator or the actors; the run finishes with every pair once", async () => {
    const prompts = 8;
    await using p = await startPanel(
      { experiment: "outage", iterations: 2, promptsPerIteration: prompts, k: 2, temperature: 1, poolSeed: 19, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT, heartbeat: { intervalMs: 500, lapseMs: 3000 } },
    );
    const ckpt = await p.randomCheckpoints(["ann", "ben", "cat"]);
    for (const m of ["ann", "ben", "cat"]) p.startActor(m, ckpt[m]!);
    const coordinator = p.startCoordinator();
    await p.waitFor("iteration 1 to close", async () => (await p.control()).some((e) => e.event === "iteration_closed"));
    // Longer than the heartbeat lapse: the coordinator sees the members lapse and must publish
    // that while the server is gone.
    await p.network.server.kill();
    await new Promise((r) => setTimeout(r, 8000));
    await p.network.server.restart();
    // The test's own connection reconnects too; until it has, a read may time out.
    await p.waitFor("the experiment to finish", async () => (await p.control().catch(() => [])).some((e) => e.event === "experiment_done"), 180_000);
    expect(coordinator.running || (await coordinator.exited) === 0).toBe(true);
    const pairs = await p.stored("pair", "pair");
    for (const it of [1, 2])
      expect(
        pairs
          .filter((x) => x.iteration === it)
          .map((x) => x.promptId)
          .sort(),
      ).toEqual([...new Set(pairs.filter((x) => x.iteration === it).map((x) => x.promptId))].sort());
    expect(pairs).toHaveLength(2 * prompts);
  }, 240_000);
});
