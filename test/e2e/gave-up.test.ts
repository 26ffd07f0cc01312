import { describe, expect, it } from "vitest";
import { controlEvent, jetStreamOf, publishMessage } from "../../protocol/mod.ts";
import { freeze, startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

describe("work a member gives up on", () => {
  it("is not waited for: the iteration closes long before its vote deadline", async () => {
    const prompts = 6;
    await using panel = await startPanel(
      { experiment: "gaveup", iterations: 1, promptsPerIteration: prompts, k: 2, temperature: 1, poolSeed: 14, minPeers: 3 },
      // Neither the heartbeat nor the vote deadline can end the wait within the test.
      {
        voting: VOTE_EVERY_PROMPT,
        heartbeat: { intervalMs: 300, lapseMs: 600_000 },
        deadlines: { voteMs: 600_000, trainMs: 600_000, trainQuorum: 1, judgeLingerMs: 1_000 },
      },
    );
    const ckpt = await panel.randomCheckpoints(["ann", "ben", "cat"]);
    panel.startActor("ann", ckpt.ann!);
    panel.startActor("ben", ckpt.ben!);
    const cat = panel.startActor("cat", ckpt.cat!);
    await panel.waitFor("every member to join", async () => (await panel.control()).filter((e) => e.event === "peer_joined").length === 3);
    freeze(cat, true); // still alive by its last heartbeat, but does nothing
    panel.startCoordinator();
    const opened = await panel.waitFor("iteration 1 to open", async () => (await panel.control()).find((e) => e.event === "iteration_opened"));
    expect((opened as { peers: string[] }).peers).toEqual(["ann", "ben", "cat"]);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await panel.control()).some((e) => e.event === "iteration_closed")).toBe(false); // waiting for cat

    // What cat's actor says when its model fails on a prompt for good (actors/giving-up.ts).
    const js = jetStreamOf(panel.nc);
    const ids = (await panel.stored("prompt", "prompt")).map((p) => p.promptId);
    expect(ids).toHaveLength(prompts);
    for (const promptId of ids) {
      const base = { iteration: 1, peer: "cat", promptId, reason: "the model gave no answers" };
      await publishMessage(js, controlEvent("gaveup", "gave_up", { ...base, work: "answer" }));
      for (const author of ["ann", "ben"]) await publishMessage(js, controlEvent("gaveup", "gave_up", { ...base, work: "judge", author }));
    }
    await panel.waitFor("iteration 1 to close", async () => (await panel.control()).some((e) => e.event === "iteration_closed"), 30_000);
    const pairs = await panel.stored("pair", "pair");
    expect(pairs).toHaveLength(prompts);
    for (const p of pairs) expect(p.judges.includes("cat")).toBe(false);
    freeze(cat, false);
  }, 120_000);
});
