import { readFileSync } from "node:fs";
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { BUCKETS, readRecord } from "../../protocol/mod.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";

describe("two processes serving one peer", () => {
  it("answer each prompt once, train once per iteration, and both get the new weights", async () => {
    const prompts = 40;
    await using panel = await startPanel(
      { experiment: "repl", iterations: 2, promptsPerIteration: prompts, k: 2, temperature: 1, poolSeed: 14, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH },
      { actorArgs: ["--batch", "2"] },
    );
    const ckpt = await panel.randomCheckpoints(["ann", "ben", "cat"]);
    const a1 = panel.startActor("ann", ckpt.ann!, "ann-1");
    const a2 = panel.startActor("ann", ckpt.ann!, "ann-2");
    panel.startActor("ben", ckpt.ben!);
    panel.startActor("cat", ckpt.cat!);
    const members = await new Kvm(panel.nc).open(BUCKETS.members);
    await panel.waitFor("both replicas to register", async () => {
      const keys = [];
      for await (const k of await members.keys("repl.ann.>")) keys.push(k);
      return keys.length === 2;
    });
    panel.startCoordinator();
    await panel.waitFor("the experiment to finish", async () => (await panel.control()).some((e) => e.event === "experiment_done"));

    const cands = (await panel.stored("cand", "candidates")).filter((c) => c.author === "ann");
    // Every prompt answered once for ann, whichever process did it.
    for (const it of [1, 2]) expect(new Set(cands.filter((c) => c.iteration === it).map((c) => c.promptId)).size).toBe(prompts);
    const control = await panel.control();
    expect(control.filter((e) => e.event === "training_done" && e.peer === "ann").length).toBe(2);
    // The process that did not train loaded the weights the other one published.
    const logs = [a1, a2].map((p) => readFileSync(p.logFile, "utf8"));
    expect(logs.some((l) => l.includes("loaded weights trained by another process"))).toBe(true);
    // ... and a process never reloads the weights it trained itself.
    const iterationsOf = (log: string, re: RegExp) => [...log.matchAll(re)].map((m) => Number(m[1]));
    for (const log of logs) {
      const trained = iterationsOf(log, / trained {2}iteration=(\d+)/g);
      const loaded = iterationsOf(log, /loaded weights trained by another process of this peer {2}iteration=(\d+)/g);
      expect(trained.filter((i) => loaded.includes(i))).toEqual([]);
    }
    // Both still serve, on the same weights.
    await panel.waitFor(
      "both replicas to report the trained weights",
      async () => {
        const v = [];
        for (const key of ["repl.ann.ann-1", "repl.ann.ann-2"]) v.push((await readRecord(members, key, "member"))!.modelVersion);
        return (
          v[0] === v[1] && v[0] === (control.filter((e) => e.event === "training_done" && e.peer === "ann").at(-1) as { modelVersion: string }).modelVersion
        );
      },
      10_000,
    );
  }, 300_000);
});
