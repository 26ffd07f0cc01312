/**
 * Randomized fault runs (`npm run chaos -- --runs N`): each run starts a small panel (three
 * random-weight tiny members, two iterations) in the set-up its fault needs, injects the fault at
 * a random moment of iteration 1, and checks the outcome:
 *
 *   coordinator  SIGKILL the coordinator, restart it 1-3 s later          (one server)
 *   actor        SIGKILL one actor, restart it 1-3 s later                (one server)
 *   node         SIGKILL the node leading the candidates stream of a 3-node cluster (R3),
 *                restart it 5-20 s later
 *   link         cut site b's link to the hub for 10-30 s                 (hub + two sites, credentials on)
 *
 * After each run: the experiment finished; every prompt has exactly one pair per iteration;
 * no verdict is stored twice; every member trained exactly once per iteration. Every run prints
 * its seed; `--seed S --runs 1 --faults F` replays it. The table at the end says how many runs
 * survived each fault and what broke.
 *
 *   npm run chaos -- [--runs 3] [--seed 1] [--faults coordinator,actor,node,link]   (run.ts)
 *
 * npm test runs a fixed seed of the coordinator and actor faults (test/e2e/chaos-fixed.test.ts);
 * the node and link faults have scenarios of their own there (cluster-node-loss, two-sites).
 */
import { makeRng } from "../../actors/random/rng.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { closeNats, connectNats } from "../../deploy/cli/connect.ts";
import { COORDINATOR_IDENTITY, seedFileOf, writeCreds } from "../../deploy/ops/creds.ts";
import { createExperiment, experimentConfig, loadTinyPool } from "../../deploy/ops/experiment.ts";
import { natsTarget } from "../../deploy/ops/nats-options.ts";
import { NatsCluster, NatsServer } from "../../deploy/ops/nats-server.ts";
import { PopProcess } from "../../deploy/cli/processes.ts";
import { HUB_DOMAIN, SiteNetwork } from "../../deploy/ops/sites.ts";
import { STREAMS, ensureTopology, managerOf, readStored, subjects } from "../../protocol/mod.ts";
import { randomCheckpoints, VOTE_EVERY_PROMPT } from "../e2e/panel.ts";
import { startLinkProxy, type LinkProxy } from "../support/link-proxy.ts";

export const FAULTS = ["coordinator", "actor", "node", "link"] as const;
export type Fault = (typeof FAULTS)[number];
const PEERS = ["ann", "ben", "cat"];
const PROMPTS = 24;
const ITERATIONS = 2;
const RUN_TIMEOUT_MS = 300_000;


/** The run's random choices, replayable from its seed. */
const rng = (seed: number) => makeRng(seed).next;
const between = (r: () => number, lo: number, hi: number) => Math.round(lo + r() * (hi - lo));
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** One environment: where the processes connect and how to hurt it. */
interface Setup {
  adminUrl: string;
  /** Extra connection flags of a process by identity and the URL it dials. */
  flags(identity: string): string[];
  admin(): Promise<NatsConnection>;
  inject(r: () => number, processes: Map<string, PopProcess>, restart: (name: string) => void, note: (s: string) => void): Promise<void>;
  dispose(): Promise<void>;
}

async function singleServer(dir: string, fault: "coordinator" | "actor"): Promise<Setup> {
  const server = await NatsServer.start({ dir: join(dir, "nats") });
  return {
    adminUrl: server.url,
    flags: () => ["--server", server.url],
    admin: () => connectNats(server.url, "chaos"),
    async inject(r, processes, restart, note) {
      const victim = fault === "coordinator" ? "coordinator" : PEERS[Math.floor(r() * PEERS.length)]!;
      const pause = between(r, 1000, 3000);
      note(`SIGKILL ${victim}, restart after ${pause} ms`);
      await processes.get(victim)!.kill();
      await sleep(pause);
      restart(victim);
    },
    dispose: () => server.dispose(),
  };
}

async function cluster(dir: string): Promise<Setup> {
  const c = await NatsCluster.start(3, { dir: join(dir, "cluster") });
  let nc: NatsConnection | undefined;
  return {
    adminUrl: c.urls.join(","),
    flags: () => ["--server", c.urls.join(",")],
    async admin() {
      nc = await connectNats(c.urls.join(","), "chaos");
      for (let i = 0; ; i++) {
        try {
          await ensureTopology(nc, { replicas: 3 });
          return nc;
        } catch (error) {
          if (i > 60) throw error;
          await sleep(500);
        }
      }
    },
    async inject(r, _processes, _restart, note) {
      const leader = (await (await managerOf(nc!)).streams.info(STREAMS.candidates.name)).cluster?.leader;
      const node = c.nodes.find((n) => n.options.name === leader) ?? c.nodes[0]!;
      const down = between(r, 5000, 20_000);
      note(`SIGKILL node ${node.options.name} (leader of ${STREAMS.candidates.name}), restart after ${down} ms`);
      await node.kill();
      await sleep(down);
      await node.restart();
    },
    dispose: () => c.dispose(),
  };
}

async function sites(dir: string): Promise<Setup> {
  const creds = writeCreds({ experiment: "chaos", peers: PEERS, out: join(dir, "creds"), jsDomain: HUB_DOMAIN });
  let link: LinkProxy | undefined;
  const net = await SiteNetwork.start({
    sites: ["a", "b"], dir: join(dir, "servers"), include: [creds.authConf],
    linkTo: async (site, port) => (site === "b" ? (link = await startLinkProxy(port)).address : `127.0.0.1:${port}`),
    advertise: (links) => links.get("b")!,
  });
  const siteOf = (id: string) => (id === "coordinator" ? net.hub.url : id === "cat" ? net.url("b") : net.url("a"));
  return {
    adminUrl: net.hub.url,
    flags: (id) => ["--server", siteOf(id), "--nkey", seedFileOf(creds.dir, id), "--js-domain", HUB_DOMAIN],
    admin: () => connectNats(natsTarget(net.hub.url, { nkey: seedFileOf(creds.dir, COORDINATOR_IDENTITY), jsDomain: HUB_DOMAIN }), "chaos"),
    async inject(r, _processes, _restart, note) {
      const cut = between(r, 10_000, 30_000);
      note(`cut site b's link for ${cut} ms`);
      link!.cut();
      await sleep(cut);
      link!.heal();
    },
    async dispose() {
      await net.dispose();
      await link?.close();
    },
  };
}

/** Runs one seeded run of `fault`; returns what broke (empty when it survived). */
export async function runOnce(fault: Fault, seed: number): Promise<{ broke: string[]; notes: string[]; ms: number }> {
  const r = rng(seed);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), `pop-chaos-${fault}-`));
  const notes: string[] = [];
  const broke: string[] = [];
  const setup = fault === "node" ? await cluster(dir) : fault === "link" ? await sites(dir) : await singleServer(dir, fault);
  const processes = new Map<string, PopProcess>();
  let nc: NatsConnection | undefined;
  try {
    nc = await setup.admin();
    await ensureTopology(nc);
    const settings = { experiment: "chaos", iterations: ITERATIONS, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: seed % 1000, minPeers: PEERS.length };
    await loadTinyPool(nc, settings.poolSeed, ITERATIONS * PROMPTS, "chaos");
    // Heartbeats may lapse for longer than any fault lasts: every member is expected in every iteration.
    await createExperiment(nc, experimentConfig(settings, { voting: VOTE_EVERY_PROMPT, heartbeat: { intervalMs: 1000, lapseMs: 90_000 } }));
    const ckpt = await randomCheckpoints(join(dir, "ckpt"), PEERS);
    let generation = 0;
    const start = (name: string) => {
      const args = name === "coordinator" ? ["coordinator"] : ["actor", "--peer", name, "--checkpoint", ckpt[name]!, "--bench-items", "10"];
      processes.set(name, new PopProcess(name, [...args, "--experiment", "chaos", ...setup.flags(name)], join(dir, `${name}-${generation++}.log`)));
    };
    start("coordinator");
    for (const p of PEERS) start(p);
    const control = async () => (await readStored(nc!, STREAMS.control.name, subjects.all("chaos", "ctl"), "control").catch(() => ({ messages: [] }))).messages;
    const until = async (what: string, check: () => Promise<boolean>, ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(1000);
      }
    };
    await until("iteration 1 to open", async () => (await control()).some((e) => e.event === "iteration_opened"), 120_000);
    await sleep(between(r, 0, 8000));
    await setup.inject(r, processes, start, (n) => notes.push(n));
    await until("the run to finish", async () => (await control()).some((e) => e.event === "experiment_done"), RUN_TIMEOUT_MS).catch((e) => broke.push((e as Error).message));

    const pairs = (await readStored(nc, STREAMS.pairs.name, subjects.all("chaos", "pair"), "pair")).messages;
    for (let it = 1; it <= ITERATIONS; it++) {
      const ids = pairs.filter((p) => p.iteration === it).map((p) => p.promptId);
      if (ids.length !== PROMPTS || new Set(ids).size !== PROMPTS) broke.push(`iteration ${it}: ${ids.length} pairs for ${new Set(ids).size} of ${PROMPTS} prompts`);
    }
    const verdicts = (await readStored(nc, STREAMS.verdicts.name, subjects.all("chaos", "verdict"), "verdict")).messages;
    // One verdict per judge and prompt covers its authors; none may be scored twice by a judge.
    const keys = verdicts.flatMap((v) => v.authors.map((a) => `${v.iteration}|${v.promptId}|${v.judge}|${a}`));
    if (new Set(keys).size !== keys.length) broke.push(`${keys.length - new Set(keys).size} verdicts on an author stored twice`);
    const trained = (await control()).filter((e) => e.event === "training_done");
    for (let it = 1; it <= ITERATIONS; it++) {
      for (const p of PEERS) {
        const versions = new Set(trained.filter((e) => e.event === "training_done" && e.iteration === it && e.peer === p).map((e) => (e.event === "training_done" ? e.modelVersion : "")));
        if (versions.size !== 1) broke.push(`${p} trained ${versions.size} times on iteration ${it}`);
      }
    }
    if (broke.length) for (const p of processes.values()) notes.push(`--- ${p.name}\n${p.logTail(25)}`);
  } catch (error) {
    broke.push((error as Error).message);
  } finally {
    await Promise.all([...processes.values()].map((p) => p.stop(5000)));
    if (nc) await closeNats(nc).catch(() => undefined);
    await setup.dispose().catch(() => undefined);
    if (!broke.length) rmSync(dir, { recursive: true, force: true });
    else notes.push(`kept ${dir}`);
  }
  return { broke, notes, ms: Date.now() - t0 };
}

