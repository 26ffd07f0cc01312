import { describe, expect, it } from "vitest";
import { freeze, startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

describe("a peer that joins mid-experiment", () => {
  it("joins during iteration 1 and takes part from iteration 2", async () => {
    await using panel = await startPanel(
      { experiment: "late", iterations: 2, promptsPerIteration: 6, k: 2, temperature: 1, poolSeed: 11, minPeers: 3 },
      {
        // Every prompt yields a pair, so training really runs on both iterations.
        voting: VOTE_EVERY_PROMPT,
        heartbeat: { intervalMs: 500, lapseMs: 60_000 },
      },
    );
    const ckpt = await panel.randomCheckpoints(["ann", "ben", "cat", "dan"]);
    panel.startCoordinator();
    const cat = panel.startActor("cat", ckpt.cat!);
    panel.startActor("ann", ckpt.ann!);
    panel.startActor("ben", ckpt.ben!);

    await panel.waitFor("iteration 1 to open", async () => (await panel.control()).some((e) => e.event === "iteration_opened" && e.iteration === 1));
    // Hold iteration 1 open (cat's verdicts are needed to finish it) while dan joins.
    freeze(cat, true);
    panel.startActor("dan", ckpt.dan!);
    await panel.waitFor("dan to join", async () => (await panel.control()).some((e) => e.event === "peer_joined" && e.peer === "dan"));
    expect((await panel.control()).some((e) => e.event === "iteration_closed")).toBe(false);
    freeze(cat, false);

    await panel.waitFor("the experiment to finish", async () => (await panel.control()).some((e) => e.event === "experiment_done"));
    expect(await panel.iterationPeers(1)).toEqual(["ann", "ben", "cat"]);
    expect(await panel.iterationPeers(2)).toEqual(["ann", "ben", "cat", "dan"]);

    const cands = await panel.stored("cand", "candidates");
    const verdicts = await panel.stored("verdict", "verdict");
    const control = await panel.control();
    // Iteration 1: dan neither answered nor judged.
    expect(cands.filter((c) => c.iteration === 1 && c.author === "dan")).toHaveLength(0);
    expect(verdicts.filter((v) => v.iteration === 1 && v.judge === "dan")).toHaveLength(0);
    // Iteration 2: dan answered every prompt, judged every other author's batch, and was judged.
    expect(cands.filter((c) => c.iteration === 2 && c.author === "dan")).toHaveLength(6);
    // (verdicts counted per author judged: one message covers a judge's authors of a prompt)
    const judged = verdicts.flatMap((v) => v.authors.map((author) => ({ ...v, author })));
    expect(judged.filter((v) => v.iteration === 2 && v.judge === "dan")).toHaveLength(6 * 3);
    expect(judged.filter((v) => v.iteration === 2 && v.author === "dan")).toHaveLength(6 * 3);
    // Dan trained on iteration 2 only; the others on both.
    const trained = (peer: string) =>
      control
        .filter((e) => e.event === "training_done" && e.peer === peer)
        .map((e) => (e as { iteration: number }).iteration)
        .sort();
    expect(trained("dan")).toEqual([2]);
    expect(trained("ann")).toEqual([1, 2]);
    const pairs = await panel.stored("pair", "pair");
    expect(pairs.filter((p) => p.iteration === 2)).toHaveLength(6);
    // Dan's votes count in iteration 2: every pair not wholly his lists him among its judges.
    for (const p of pairs.filter((p) => p.iteration === 2 && !(p.chosen.author === "dan" && p.rejected.author === "dan"))) {
      expect(p.judges).toContain("dan");
    }
    for (const p of pairs.filter((p) => p.iteration === 1)) expect(p.judges).not.toContain("dan");
  }, 300_000);
});
