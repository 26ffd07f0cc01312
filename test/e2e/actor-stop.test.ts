import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEMO_DEFAULTS } from "../../deploy/demo/defaults.ts";
import { consumers, openManager, STREAMS } from "../../protocol/mod.ts";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

describe("an actor stopped while it trains", () => {
  it("exits within seconds, and the iteration it was training on is redelivered", async () => {
    await using panel = await startPanel(
      { experiment: "stop", iterations: 1, promptsPerIteration: 12, k: 2, temperature: 1, poolSeed: 21, minPeers: 2 },
      // Enough epochs that training runs far longer than the test waits for the stop.
      { voting: VOTE_EVERY_PROMPT, training: { ...DEMO_DEFAULTS.overrides.training, epochs: 2000, batchSize: 2 } },
      { actorArgs: ["--batch", "4"] },
    );
    const ckpt = await panel.randomCheckpoints(["ann", "ben"]);
    const ann = panel.startActor("ann", ckpt.ann!, "ann-1");
    panel.startActor("ben", ckpt.ben!);
    panel.startCoordinator();
    const training = (log: string) => readFileSync(log, "utf8").includes("training with SimPO");
    await panel.waitFor("ann to start training", async () => training(ann.logFile), 120_000);

    const t0 = Date.now();
    ann.child.kill("SIGTERM");
    const code = await ann.exited;
    const ms = Date.now() - t0;
    expect(code, readFileSync(ann.logFile, "utf8").slice(-2000)).toBe(0);
    expect(ms).toBeLessThan(5_000);
    expect(readFileSync(ann.logFile, "utf8")).toContain("left the experiment");

    // The close of the iteration was handed back, not acknowledged or dead-lettered ...
    const jsm = await openManager(panel.nc);
    const ctl = await jsm.consumers.info(STREAMS.control.name, consumers.peerControl("stop", "ann").config.durable_name!);
    expect(ctl.num_ack_pending + ctl.num_pending).toBeGreaterThan(0);
    expect((await jsm.streams.info(STREAMS.dead.name)).state.messages).toBe(0);
    expect((await panel.control()).some((e) => e.event === "training_done" && e.peer === "ann")).toBe(false);
    const again = panel.startActor("ann", ckpt.ann!, "ann-2");
    await panel.waitFor("the next ann process to train on the iteration", async () => training(again.logFile), 60_000);
  }, 180_000);

  it("exits within seconds when its NATS server is gone", async () => {
    await using panel = await startPanel(
      { experiment: "gone", iterations: 1, promptsPerIteration: 4, k: 2, temperature: 1, poolSeed: 22, minPeers: 2 },
      { voting: VOTE_EVERY_PROMPT },
    );
    const ckpt = await panel.randomCheckpoints(["ann"]);
    const ann = panel.startActor("ann", ckpt.ann!);
    await panel.waitFor("ann to join", async () => readFileSync(ann.logFile, "utf8").includes("joined"), 120_000);
    await panel.network.server.kill();
    const t0 = Date.now();
    ann.child.kill("SIGTERM");
    const code = await ann.exited;
    // Leaving needs the server: a stop finds out at once that it is gone and closes the
    // connection instead of draining it (a drain waits for a server forever).
    const log = readFileSync(ann.logFile, "utf8");
    expect(Date.now() - t0, log.slice(-2000)).toBeLessThan(5_000);
    expect(code, log.slice(-2000)).toBe(0);
    expect(log).toContain("serverReachable=false");
  }, 120_000);
});
