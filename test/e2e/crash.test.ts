import { describe, expect, it } from "vitest";
import { readStored, STREAMS, subjects } from "../../protocol/mod.ts";
import { freeze, startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";

describe("crashes mid-iteration", () => {
  it("publishes every prompt's pair exactly once when the coordinator and an actor are SIGKILLed and restarted", async () => {
    const prompts = 48;
    await using panel = await startPanel(
      { experiment: "crash", iterations: 2, promptsPerIteration: prompts, k: 2, temperature: 1, poolSeed: 12, minPeers: 3 },
      {
        // Thresholds at zero make every prompt eligible, so exactly one pair per prompt is expected.
        voting: VOTE_EVERY_PROMPT,
        training: TRAIN_ONE_EPOCH,
        heartbeat: { intervalMs: 500, lapseMs: 60_000 },
        // A window a quarter of the iteration: it moves through a restart of the coordinator.
        openPrompts: 12,
      },
      { actorArgs: ["--batch", "4"] },
    );
    const ckpt = await panel.randomCheckpoints(["ann", "ben", "cat"]);
    const coordinator = panel.startCoordinator();
    const ann = panel.startActor("ann", ckpt.ann!);
    const ben = panel.startActor("ben", ckpt.ben!, "ben-1");
    const cat = panel.startActor("cat", ckpt.cat!);

    await panel.waitFor("a few pairs of iteration 1", async () => (await panel.stored("pair", "pair")).length >= 3, 240_000);
    freeze(ann, true);
    freeze(cat, true);
    const published = (await panel.stored("prompt", "prompt")).filter((p) => p.iteration === 1).length;
    const before = await panel.stored("pair", "pair");
    // Only the open window is out: prompts are published as earlier ones are voted.
    expect(published).toBeLessThanOrEqual(before.length + 12);
    expect((await panel.control()).some((e) => e.event === "iteration_closed")).toBe(false);
    expect(before.length).toBeLessThan(prompts);
    await coordinator.kill();
    await ben.kill();
    panel.startCoordinator();
    panel.startActor("ben", ckpt.ben!, "ben-2");
    freeze(ann, false);
    freeze(cat, false);

    await panel.waitFor("the experiment to finish", async () => (await panel.control()).some((e) => e.event === "experiment_done"), 300_000);
    const { messages: pairs } = await readStored(panel.nc, STREAMS.pairs.name, subjects.all("crash", "pair"), "pair");
    for (const it of [1, 2]) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      expect(ids).toHaveLength(prompts);
      expect(new Set(ids).size).toBe(prompts);
    }
    // The pairs published before the crash are the ones in the final record.
    const final = new Map(pairs.map((p) => [p.pairId, p]));
    for (const p of before) expect(final.get(p.pairId)).toEqual(p);
    // Ben's restarted process carried on: both iterations trained exactly once per peer.
    const done = (await panel.control())
      .filter((e) => e.event === "training_done")
      .map((e) => `${(e as { peer: string }).peer}:${(e as { iteration: number }).iteration}`);
    expect(done.sort()).toEqual(["ann:1", "ann:2", "ben:1", "ben:2", "cat:1", "cat:2"]);
  }, 400_000);
});
