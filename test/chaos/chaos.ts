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
 *   site-loss    SIGKILL the leader's site whole (node, peer, leading coordinator), restart its
 *                node and peer 20-40 s later                            (three-site cluster, test/chaos/sites.ts)
 *   site-cut     cut the leader's site off (routes and client links) for 20-60 s   (three-site cluster)
 *   leader-loss  SIGKILL the leading coordinator only                   (three-site cluster)
 *
 * After each run (test/chaos/checks.ts): the experiment finished; every prompt has exactly one
 * pair per iteration; nothing refused as a stale leader's was counted; no verdict is stored
 * twice; every member on an iteration's roll trained on it exactly once; and the fault's own
 * checks (the standby took over; a lost site's peer left by heartbeat and rejoined). Each run
 * measures the time to take over (fault to the lease's next takeover) and the time lost
 * (iteration 1's cycle minus the undisturbed iteration 2's). Every run prints its seed;
 * `--seed S --runs 1 --faults F` replays it. The table at the end says how many runs survived
 * each fault, the medians of both measures and what broke.
 *
 *   npm run chaos -- [--runs 3] [--seed 1] [--faults coordinator,actor,node,link,site-loss,site-cut,leader-loss]   (run.ts)
 *
 * npm test runs a fixed seed of the coordinator and actor faults (test/e2e/chaos-fixed.test.ts);
 * the node, link and leader-loss faults have scenarios of their own there (cluster-node-loss,
 * two-sites, leader-loss).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeRng } from "../../actors/random/rng.ts";
import type { PopProcess } from "../../deploy/cli/processes.ts";
import { STREAMS, managerOf, retrying } from "../../protocol/mod.ts";
import { ClusterNetwork, SingleServer, SitesNetwork, type PanelNetwork } from "../support/networks.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT, type Panel } from "../support/panel.ts";
import { checkRun } from "./checks.ts";
import { between, oneCoordinator, sleep, type Injected, type Setup } from "./setup.ts";
import { leaseOf, SITE_FAULTS, threeSites, type SiteFault } from "./sites.ts";

export const FAULTS = ["coordinator", "actor", "node", "link", ...SITE_FAULTS] as const;
export type Fault = (typeof FAULTS)[number];
const PEERS = ["ann", "ben", "cat"];
const PROMPTS = 24;
const ITERATIONS = 2;
const RUN_TIMEOUT_MS = 300_000;
/** Heartbeats may lapse for longer than most faults last: every member is expected in every iteration. */
const PATIENT_HEARTBEAT = { intervalMs: 1000, lapseMs: 90_000 };

/** The run's random choices, replayable from its seed. */
const rng = (seed: number) => makeRng(seed).next;

async function singleServer(dir: string, fault: "coordinator" | "actor"): Promise<Setup> {
  return {
    network: await SingleServer.start({ dir: join(dir, "nats") }),
    prompts: PROMPTS,
    heartbeat: PATIENT_HEARTBEAT,
    coordinators: oneCoordinator,
    async inject(r, { processes, restart }, note) {
      const victim = fault === "coordinator" ? "coordinator" : PEERS[Math.floor(r() * PEERS.length)]!;
      const pause = between(r, 1000, 3000);
      note(`SIGKILL ${victim}, restart after ${pause} ms`);
      const at = Date.now();
      await processes.get(victim)!.kill();
      await sleep(pause);
      restart(victim);
      return { at, endedAt: Date.now() };
    },
  };
}

async function cluster(dir: string): Promise<Setup> {
  const network = await ClusterNetwork.start({ dir: join(dir, "cluster") });
  return {
    network,
    prompts: PROMPTS,
    heartbeat: PATIENT_HEARTBEAT,
    coordinators: oneCoordinator,
    async inject(r, { panel }, note) {
      const leader = (await (await managerOf(panel.nc)).streams.info(STREAMS.candidates.name)).cluster?.leader;
      const nodes = network.cluster.nodes;
      const node = nodes.find((n) => n.options.name === leader) ?? nodes[0]!;
      const down = between(r, 5000, 20_000);
      note(`SIGKILL node ${node.options.name} (leader of ${STREAMS.candidates.name}), restart after ${down} ms`);
      const at = Date.now();
      await node.kill();
      await sleep(down);
      await node.restart();
      return { at, endedAt: Date.now() };
    },
  };
}

async function sites(dir: string): Promise<Setup> {
  const network = await SitesNetwork.start({ dir: join(dir, "sites"), experiment: "chaos", siteOf: { ann: "a", ben: "a", cat: "b" }, cut: "b" });
  return {
    network,
    prompts: PROMPTS,
    heartbeat: PATIENT_HEARTBEAT,
    coordinators: oneCoordinator,
    async inject(r, _run, note) {
      const cut = between(r, 10_000, 30_000);
      note(`cut site b's link for ${cut} ms`);
      const at = Date.now();
      network.link.cut();
      await sleep(cut);
      network.link.heal();
      return { at, endedAt: Date.now() };
    },
  };
}

function setupOf(fault: Fault, dir: string): Promise<Setup> {
  if (fault === "node") return cluster(dir);
  if (fault === "link") return sites(dir);
  if (fault === "coordinator" || fault === "actor") return singleServer(dir, fault);
  return threeSites(join(dir, "site-cluster"), fault as SiteFault);
}

/** One run's outcome: what broke (empty when it survived), notes, and its measures. */
export interface RunResult {
  broke: string[];
  notes: string[];
  ms: number;
  /** The fault to the lease's next takeover, ms (none when the lead did not change). */
  takeoverMs?: number;
  /** Iteration 1's cycle minus iteration 2's, ms. */
  lostMs?: number;
}

/** Runs one seeded run of `fault`. */
export async function runOnce(fault: Fault, seed: number): Promise<RunResult> {
  const r = rng(seed);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), `pop-chaos-${fault}-`));
  const notes: string[] = [];
  const broke: string[] = [];
  const measured: Pick<RunResult, "takeoverMs" | "lostMs"> = {};
  let panel: Panel<PanelNetwork> | undefined;
  try {
    const setup = await setupOf(fault, dir);
    const settings = {
      experiment: "chaos",
      iterations: ITERATIONS,
      promptsPerIteration: setup.prompts,
      k: 2,
      temperature: 1,
      poolSeed: seed % 1000,
      minPeers: PEERS.length,
    };
    panel = await startPanel(
      settings,
      {
        voting: VOTE_EVERY_PROMPT,
        training: TRAIN_ONE_EPOCH,
        heartbeat: setup.heartbeat,
        ...(setup.leaseMs ? { coordination: { leaseMs: setup.leaseMs } } : {}),
      },
      { network: setup.network, dir, benchItems: 10 },
    );
    const p = panel;
    const ckpt = await p.randomCheckpoints(PEERS);
    const processes = new Map<string, PopProcess>();
    const coordinators = setup.coordinators(p);
    const restart = (name: string) => processes.set(name, coordinators[name]?.() ?? p.startActor(name, ckpt[name]!));
    const control = () => p.control().catch(() => []);
    const until = async (what: string, check: () => Promise<boolean>, ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(1000);
      }
    };
    // The first coordinator leads before the next starts, so the fault knows whom it hits.
    for (const [i, name] of Object.keys(coordinators).entries()) {
      restart(name);
      if (i === 0 && Object.keys(coordinators).length > 1)
        await until(`${name} to lead`, async () => (await leaseOf(p).catch(() => undefined))?.instance === name, 60_000);
    }
    for (const peer of PEERS) restart(peer);
    await until("iteration 1 to open", async () => (await control()).some((e) => e.event === "iteration_opened"), 120_000);
    // A seeded moment of iteration 1: its close ends the wait early (a fast panel can close it in
    // seconds, and a fault after the experiment's end would test nothing).
    const delay = between(r, 0, 8000);
    for (const t0 = Date.now(); Date.now() - t0 < delay; await sleep(250))
      if ((await control()).some((e) => e.event === "iteration_closed" && e.iteration === 1)) break;
    const run = { panel: p, processes, restart };
    const injected: Injected = await setup.inject(r, run, (n) => notes.push(n));
    await until("the run to finish", async () => (await control()).some((e) => e.event === "experiment_done"), RUN_TIMEOUT_MS).catch((e) =>
      broke.push((e as Error).message),
    );
    // Right after a heal the cluster may still be electing leaders ("JetStream system temporarily
    // unavailable"): the checks only read, so they are tried again as every reader of ours would.
    const retryLog = { warn: (_: object, m: string) => notes.push(m) };
    const checked = await retrying(
      "the checks",
      () => checkRun(p, { peers: PEERS, prompts: setup.prompts, iterations: ITERATIONS, injected }),
      retryLog,
      60_000,
    );
    broke.push(...checked.broke, ...(await retrying("the fault's checks", async () => (await setup.check?.(run, injected)) ?? [], retryLog, 60_000)));
    notes.push(...checked.notes);
    measured.takeoverMs = checked.takeoverMs;
    measured.lostMs = checked.lostMs;
    if (broke.length) notes.push(p.logTails(25));
  } catch (error) {
    broke.push((error as Error).message);
  } finally {
    // An explicit end, not `await using`: the directory is kept when the run broke, and a thrown error is known only here.
    await panel?.dispose().catch(() => undefined);
    if (!broke.length) rmSync(dir, { recursive: true, force: true });
    else notes.push(`kept ${dir}`);
  }
  return { broke, notes, ms: Date.now() - t0, ...measured };
}
