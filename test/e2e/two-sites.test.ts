/**
 * Two sites and a hub joined by leafnodes (deploy/ops/sites.ts), credentials on everywhere: the
 * coordinator at the hub, two peers at site "a", one at site "b" whose link to the hub goes
 * through a proxy the test controls. The link is cut for 30 s in mid-iteration and healed; the
 * experiment finishes with every prompt's pair exactly once, and the cut site's peer has taken
 * part before the cut and after it.
 */
import { describe, expect, it } from "vitest";
import type { MessageOf } from "../../protocol/mod.ts";
import { eventually } from "../support/nats.ts";
import { SitesNetwork } from "../support/networks.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const EXP = "twosite";
const SITE_OF = { ann: "a", ben: "a", cat: "b" } as const;
const PEERS = Object.keys(SITE_OF) as (keyof typeof SITE_OF)[];
const PROMPTS = 40;
const CUT_MS = 30_000;

describe("an experiment across two sites", () => {
  it("finishes with every pair once when a site's link is cut for 30 s mid-iteration", async () => {
    // POP_KEEP_TEST_DIRS=1 keeps the servers' and processes' logs for a post-mortem.
    await using panel = await startPanel(
      { experiment: EXP, iterations: 2, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 31, minPeers: 3 },
      // Heartbeats may lapse for longer than the cut: the panel waits for site b instead of going on without it.
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH, heartbeat: { intervalMs: 1000, lapseMs: 90_000 } },
      // Site b's link to the hub goes through a proxy the test cuts and heals.
      { network: await SitesNetwork.start({ experiment: EXP, siteOf: SITE_OF, cut: "b" }), benchItems: 10 },
    );
    const { link } = panel.network;
    const ckpt = await panel.randomCheckpoints(PEERS);
    panel.startCoordinator();
    for (const p of PEERS) panel.startActor(p, ckpt[p]!);
    const processes = [...panel.processes.values()];
    const logs = () => panel.logTails(60);

    const control = () => panel.control();
    const fromCat = async (iteration: number) =>
      (await panel.stored("verdict", "verdict")).filter((v) => v.judge === "cat" && v.iteration === iteration).length;

    // Mid-iteration: cat (site b) has judged in iteration 1, which is still open.
    await eventually(async () => (await fromCat(1)) > 0, 120_000, "cat's first verdict of iteration 1").catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs()}`);
    });
    link.cut();
    const before = await fromCat(1);
    expect(
      (await control()).some((e) => e.event === "iteration_closed" && e.iteration === 1),
      "the cut came after iteration 1 closed",
    ).toBe(false);
    await new Promise((r) => setTimeout(r, CUT_MS));
    link.heal();

    await eventually(async () => (await control()).some((e) => e.event === "experiment_done"), 240_000, "the run to finish after the link healed").catch(
      (e) => {
        throw new Error(`${(e as Error).message}\n${logs()}`);
      },
    );
    for (const p of processes) expect(p.running || (await p.exited) === 0, `${p.name}:\n${p.logTail()}`).toBe(true);

    // Cat took part after the cut: it trained on iteration 1 and answered and judged in iteration 2.
    const events = await control();
    expect(events.some((e) => e.event === "training_done" && e.peer === "cat" && e.iteration === 1)).toBe(true);
    const candidates: MessageOf<"candidates">[] = await panel.stored("cand", "candidates");
    expect(candidates.some((c) => c.author === "cat" && c.iteration === 2)).toBe(true);
    expect(await fromCat(2)).toBeGreaterThan(0);
    expect(before).toBeGreaterThan(0);

    const pairs = await panel.stored("pair", "pair");
    for (const it of [1, 2]) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      expect(ids).toHaveLength(PROMPTS);
      expect(new Set(ids).size).toBe(PROMPTS);
    }
  }, 420_000);
});
