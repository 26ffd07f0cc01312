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
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeRng } from "../../actors/random/rng.ts";
import type { PopProcess } from "../../deploy/cli/processes.ts";
import { STREAMS, managerOf } from "../../protocol/mod.ts";
import { ClusterNetwork, SingleServer, SitesNetwork, type PanelNetwork } from "../support/networks.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT, type Panel } from "../support/panel.ts";

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

/** A run in progress, as a fault sees it: the panel, its latest process of each name, and a restart. */
interface Run {
  panel: Panel<PanelNetwork>;
  processes: Map<string, PopProcess>;
  restart(name: string): void;
}

/** A fault: the servers its run needs and how it hurts the run. */
interface Setup {
  network: PanelNetwork;
  inject(r: () => number, run: Run, note: (s: string) => void): Promise<void>;
}

async function singleServer(dir: string, fault: "coordinator" | "actor"): Promise<Setup> {
  return {
    network: await SingleServer.start({ dir: join(dir, "nats") }),
    async inject(r, { processes, restart }, note) {
      const victim = fault === "coordinator" ? "coordinator" : PEERS[Math.floor(r() * PEERS.length)]!;
      const pause = between(r, 1000, 3000);
      note(`SIGKILL ${victim}, restart after ${pause} ms`);
      await processes.get(victim)!.kill();
      await sleep(pause);
      restart(victim);
    },
  };
}

async function cluster(dir: string): Promise<Setup> {
  const network = await ClusterNetwork.start({ dir: join(dir, "cluster") });
  return {
    network,
    async inject(r, { panel }, note) {
      const leader = (await (await managerOf(panel.nc)).streams.info(STREAMS.candidates.name)).cluster?.leader;
      const nodes = network.cluster.nodes;
      const node = nodes.find((n) => n.options.name === leader) ?? nodes[0]!;
      const down = between(r, 5000, 20_000);
      note(`SIGKILL node ${node.options.name} (leader of ${STREAMS.candidates.name}), restart after ${down} ms`);
      await node.kill();
      await sleep(down);
      await node.restart();
    },
  };
}

async function sites(dir: string): Promise<Setup> {
  const network = await SitesNetwork.start({ dir: join(dir, "sites"), experiment: "chaos", siteOf: { ann: "a", ben: "a", cat: "b" }, cut: "b" });
  return {
    network,
    async inject(r, _run, note) {
      const cut = between(r, 10_000, 30_000);
      note(`cut site b's link for ${cut} ms`);
      network.link.cut();
      await sleep(cut);
      network.link.heal();
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
  let panel: Panel<PanelNetwork> | undefined;
  try {
    const setup = fault === "node" ? await cluster(dir) : fault === "link" ? await sites(dir) : await singleServer(dir, fault);
    const settings = {
      experiment: "chaos",
      iterations: ITERATIONS,
      promptsPerIteration: PROMPTS,
      k: 2,
      temperature: 1,
      poolSeed: seed % 1000,
      minPeers: PEERS.length,
    };
    // Heartbeats may lapse for longer than any fault lasts: every member is expected in every iteration.
    panel = await startPanel(
      settings,
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH, heartbeat: { intervalMs: 1000, lapseMs: 90_000 } },
      { network: setup.network, dir, benchItems: 10 },
    );
    const p = panel;
    const ckpt = await p.randomCheckpoints(PEERS);
    const processes = new Map<string, PopProcess>();
    const start = (name: string) => processes.set(name, name === "coordinator" ? p.startCoordinator() : p.startActor(name, ckpt[name]!));
    start("coordinator");
    for (const peer of PEERS) start(peer);
    const control = () => p.control().catch(() => []);
    const until = async (what: string, check: () => Promise<boolean>, ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(1000);
      }
    };
    await until("iteration 1 to open", async () => (await control()).some((e) => e.event === "iteration_opened"), 120_000);
    await sleep(between(r, 0, 8000));
    await setup.inject(r, { panel: p, processes, restart: start }, (n) => notes.push(n));
    await until("the run to finish", async () => (await control()).some((e) => e.event === "experiment_done"), RUN_TIMEOUT_MS).catch((e) =>
      broke.push((e as Error).message),
    );

    const pairs = await p.stored("pair", "pair");
    for (let it = 1; it <= ITERATIONS; it++) {
      const ids = pairs.filter((x) => x.iteration === it).map((x) => x.promptId);
      if (ids.length !== PROMPTS || new Set(ids).size !== PROMPTS)
        broke.push(`iteration ${it}: ${ids.length} pairs for ${new Set(ids).size} of ${PROMPTS} prompts`);
    }
    const verdicts = await p.stored("verdict", "verdict");
    // One verdict per judge and prompt covers its authors; none may be scored twice by a judge.
    const keys = verdicts.flatMap((v) => v.authors.map((a) => `${v.iteration}|${v.promptId}|${v.judge}|${a}`));
    if (new Set(keys).size !== keys.length) broke.push(`${keys.length - new Set(keys).size} verdicts on an author stored twice`);
    const trained = (await control()).filter((e) => e.event === "training_done");
    for (let it = 1; it <= ITERATIONS; it++) {
      for (const peer of PEERS) {
        const versions = new Set(
          trained
            .filter((e) => e.event === "training_done" && e.iteration === it && e.peer === peer)
            .map((e) => (e.event === "training_done" ? e.modelVersion : "")),
        );
        if (versions.size !== 1) broke.push(`${peer} trained ${versions.size} times on iteration ${it}`);
      }
    }
    if (broke.length) notes.push(p.logTails(25));
  } catch (error) {
    broke.push((error as Error).message);
  } finally {
    // An explicit end, not `await using`: the directory is kept when the run broke, and a thrown error is known only here.
    await panel?.dispose().catch(() => undefined);
    if (!broke.length) rmSync(dir, { recursive: true, force: true });
    else notes.push(`kept ${dir}`);
  }
  return { broke, notes, ms: Date.now() - t0 };
}
