/**
 * Two sites and a hub joined by leafnodes (deploy/ops/sites.ts), credentials on everywhere: the
 * coordinator at the hub, two peers at site "a", one at site "b" whose link to the hub goes
 * through a proxy the test controls. The link is cut for 30 s in mid-iteration and healed; the
 * experiment finishes with every prompt's pair exactly once, and the cut site's peer has taken
 * part before the cut and after it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { closeNats, connectNats } from "../../deploy/cli/connect.ts";
import { COORDINATOR_IDENTITY, seedFileOf, writeCreds } from "../../deploy/ops/creds.ts";
import { createExperiment, experimentConfig, loadTinyPool } from "../../deploy/ops/experiment.ts";
import { natsTarget } from "../../deploy/ops/nats-options.ts";
import { PopProcess } from "../../deploy/cli/processes.ts";
import { HUB_DOMAIN, SiteNetwork } from "../../deploy/ops/sites.ts";
import { STREAMS, ensureTopology, readStored, subjects, type MessageOf, type MessageType } from "../../protocol/mod.ts";
import { startLinkProxy, type LinkProxy } from "../support/link-proxy.ts";
import { eventually } from "../support/nats.ts";
import { randomCheckpoints, VOTE_EVERY_PROMPT } from "./panel.ts";

const EXP = "twosite";
const SITE_OF = { ann: "a", ben: "a", cat: "b" } as const;
const PEERS = Object.keys(SITE_OF) as (keyof typeof SITE_OF)[];
const PROMPTS = 40;
const CUT_MS = 30_000;

describe("an experiment across two sites", () => {
  const dir = mkdtempSync(join(tmpdir(), "pop-two-sites-"));
  const processes: PopProcess[] = [];
  let network: SiteNetwork | undefined;
  let link: LinkProxy | undefined;
  let nc: NatsConnection | undefined;
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(5000)));
    if (nc) await closeNats(nc);
    await network?.dispose();
    await link?.close();
    // POP_KEEP_TEST_DIRS=1 keeps the servers' and processes' logs for a post-mortem.
    if (!process.env.POP_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  });

  it("finishes with every pair once when a site's link is cut for 30 s mid-iteration", async () => {
    const creds = writeCreds({ experiment: EXP, peers: PEERS, out: join(dir, "creds"), jsDomain: HUB_DOMAIN });
    network = await SiteNetwork.start({
      sites: ["a", "b"], dir: join(dir, "servers"), include: [creds.authConf],
      linkTo: async (site, port) => (site === "b" ? (link = await startLinkProxy(port)).address : `127.0.0.1:${port}`),
      // Site b must come back through its (cut) link, not around it.
      advertise: (links) => links.get("b")!,
    });
    const as = (id: string, url: string) => ["--server", url, "--nkey", seedFileOf(creds.dir, id), "--js-domain", HUB_DOMAIN, "--experiment", EXP];
    nc = await connectNats(natsTarget(network.hub.url, { nkey: seedFileOf(creds.dir, COORDINATOR_IDENTITY), jsDomain: HUB_DOMAIN }), "two-sites-test");
    await ensureTopology(nc);
    const settings = { experiment: EXP, iterations: 2, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 31, minPeers: 3 };
    await loadTinyPool(nc, settings.poolSeed, settings.iterations * PROMPTS, EXP);
    // Heartbeats may lapse for longer than the cut: the panel waits for site b instead of going on without it.
    await createExperiment(nc, experimentConfig(settings, { voting: VOTE_EVERY_PROMPT, heartbeat: { intervalMs: 1000, lapseMs: 90_000 } }));
    const ckpt = await randomCheckpoints(join(dir, "ckpt"), PEERS);
    const start = (name: string, args: string[]) => processes.push(new PopProcess(name, args, join(dir, `${name}.log`)));
    start("coordinator", ["coordinator", ...as(COORDINATOR_IDENTITY, network.hub.url)]);
    for (const p of PEERS) start(p, ["actor", "--peer", p, "--checkpoint", ckpt[p]!, "--bench-items", "10", ...as(p, network.url(SITE_OF[p]))]);
    const logs = () => processes.map((p) => `--- ${p.name}\n${p.logTail(60)}`).join("\n");

    const stored = async <T extends MessageType>(stream: string, kind: "cand" | "verdict" | "pair" | "ctl", type: T) =>
      (await readStored(nc!, stream, subjects.all(EXP, kind), type)).messages;
    const control = () => stored(STREAMS.control.name, "ctl", "control");
    const fromCat = async (iteration: number) =>
      (await stored(STREAMS.verdicts.name, "verdict", "verdict")).filter((v) => v.judge === "cat" && v.iteration === iteration).length;

    // Mid-iteration: cat (site b) has judged in iteration 1, which is still open.
    await eventually(async () => (await fromCat(1)) > 0, 120_000, "cat's first verdict of iteration 1").catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs()}`);
    });
    link!.cut();
    const before = await fromCat(1);
    expect((await control()).some((e) => e.event === "iteration_closed" && e.iteration === 1), "the cut came after iteration 1 closed").toBe(false);
    await new Promise((r) => setTimeout(r, CUT_MS));
    link!.heal();

    await eventually(async () => (await control()).some((e) => e.event === "experiment_done"), 240_000, "the run to finish after the link healed").catch((e) => {
      throw new Error(`${(e as Error).message}\n${logs()}`);
    });
    for (const p of processes) expect(p.running || (await p.exited) === 0, `${p.name}:\n${p.logTail()}`).toBe(true);

    // Cat took part after the cut: it trained on iteration 1 and answered and judged in iteration 2.
    const events = await control();
    expect(events.some((e) => e.event === "training_done" && e.peer === "cat" && e.iteration === 1)).toBe(true);
    const candidates: MessageOf<"candidates">[] = await stored(STREAMS.candidates.name, "cand", "candidates");
    expect(candidates.some((c) => c.author === "cat" && c.iteration === 2)).toBe(true);
    expect(await fromCat(2)).toBeGreaterThan(0);
    expect(before).toBeGreaterThan(0);

    const pairs = await stored(STREAMS.pairs.name, "pair", "pair");
    for (const it of [1, 2]) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      expect(ids).toHaveLength(PROMPTS);
      expect(new Set(ids).size).toBe(PROMPTS);
    }
  }, 420_000);
});
