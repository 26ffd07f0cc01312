import { describe, expect, it } from "vitest";
import { freeze, startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

describe("a peer whose heartbeats lapse", () => {
  it("is dropped, and the iteration and the experiment go on without it", async () => {
    await using panel = await startPanel(
      { experiment: "lapse", iterations: 2, promptsPerIteration: 8, k: 2, temperature: 1, poolSeed: 13, minPeers: 3 },
      {
        voting: VOTE_EVERY_PROMPT,
        heartbeat: { intervalMs: 300, lapseMs: 3000 },
      },
    );
    const ckpt = await panel.randomCheckpoints(["ann", "ben", "cat"]);
    panel.startCoordinator();
    panel.startActor("ann", ckpt.ann!);
    panel.startActor("ben", ckpt.ben!);
    const cat = panel.startActor("cat", ckpt.cat!);
    await panel.waitFor("iteration 1 to open", async () => (await panel.control()).some((e) => e.event === "iteration_opened" && e.iteration === 1));
    freeze(cat, true); // hangs without a word: no heartbeats, no work

    await panel.waitFor("the experiment to finish without cat", async () => (await panel.control()).some((e) => e.event === "experiment_done"), 120_000);
    const control = await panel.control();
    expect(control.some((e) => e.event === "peer_left" && e.peer === "cat" && e.reason === "lapsed")).toBe(true);
    // Iteration 1 still had cat on its roll, iteration 2 did not.
    expect(await panel.iterationPeers(1)).toEqual(["ann", "ben", "cat"]);
    expect(await panel.iterationPeers(2)).toEqual(["ann", "ben"]);
    const pairs = await panel.stored("pair", "pair");
    expect(pairs.filter((p) => p.iteration === 1)).toHaveLength(8);
    expect(pairs.filter((p) => p.iteration === 2)).toHaveLength(8);
    const trained = control.filter((e) => e.event === "training_done").map((e) => `${(e as { peer: string }).peer}:${(e as { iteration: number }).iteration}`);
    expect(trained.sort()).toEqual(["ann:1", "ann:2", "ben:1", "ben:2"]);
    freeze(cat, false);
  }, 180_000);
});
