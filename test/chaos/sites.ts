/**
 * The three-site faults of `npm run chaos` (issue #28): a JetStream cluster stretched across
 * sites a, b and c (`pop site --layout cluster`'s configs, credentials on), one peer per site,
 * the coordinator's leader at site a and a standby at site b. The test watches from site c.
 *
 *   site-loss    SIGKILL site a whole (its node, its peer, the leading coordinator); restart the
 *                node and the peer 20-40 s later: the peer leaves by heartbeat (12 s) and rejoins
 *   site-cut     cut site a off (its routes and its processes' links to b and c) for 20-60 s:
 *                its leader cannot renew, stops publishing, and the standby takes over
 *   leader-loss  SIGKILL the leading coordinator only
 */
import { Kvm } from "@nats-io/kv";
import { COORDINATOR_IDENTITY } from "../../deploy/ops/creds.ts";
import { BUCKETS, readRecord, stateKeys, type LeaseRecord } from "../../protocol/mod.ts";
import { SiteClusterNetwork, type PanelNetwork } from "../support/networks.ts";
import type { Panel } from "../support/panel.ts";
import { between, sleep, type Injected, type Run, type Setup } from "./setup.ts";

export const SITE_FAULTS = ["site-loss", "site-cut", "leader-loss"] as const;
export type SiteFault = (typeof SITE_FAULTS)[number];

/** Where each identity runs; the coordinator identity's place is the test's own connection. */
const SITE_OF: Record<string, string> = { [COORDINATOR_IDENTITY]: "c", ann: "a", ben: "b", cat: "c" };
/** The coordinators: the leader (started first) and the standby, at different sites. */
const COORDINATOR_SITE: Record<string, string> = { "coord-a": "a", "coord-b": "b" };
/** Short enough that a takeover is quick, long enough that a loaded machine renews in time. */
const LEASE_MS = 3000;
const PROMPTS = 16;

/** The lease as stored, read through the test's own connection. */
export async function leaseOf(panel: Panel<PanelNetwork>): Promise<LeaseRecord | undefined> {
  const kv = await new Kvm(panel.nc).open(BUCKETS.state);
  return readRecord(kv, stateKeys.lease(panel.config.experiment), "lease");
}

/** The lease's takeovers by `instance` since `at` (wall clock). */
/** How long a site-loss run's peers may stay silent before they leave. */
const LAPSE_MS = 12_000;

const takenBy = (lease: LeaseRecord | undefined, instance: string, from: number, to = Infinity) =>
  (lease?.fences ?? []).filter((f) => f.instance === instance && f.since >= from && f.since <= to);

export async function threeSites(dir: string, fault: SiteFault): Promise<Setup> {
  const cutSite = fault === "site-cut" ? "a" : undefined;
  const network = await SiteClusterNetwork.start({ dir, experiment: "chaos", siteOf: SITE_OF, cut: cutSite });
  const leader = async (run: Run) => (await leaseOf(run.panel).catch(() => undefined))?.instance ?? "coord-a";
  return {
    network,
    prompts: PROMPTS,
    // Losing a site must outlast the lapse, so its peer leaves; a cut must not (it keeps its peer).
    heartbeat: { intervalMs: 1000, lapseMs: fault === "site-loss" ? LAPSE_MS : 90_000 },
    leaseMs: LEASE_MS,
    coordinators(panel) {
      const spawn = (name: string) => () =>
        panel.spawn(name, ["coordinator", ...network.flagsAt(COORDINATOR_IDENTITY, COORDINATOR_SITE[name]!), "--experiment", "chaos", "--instance", name]);
      return { "coord-a": spawn("coord-a"), "coord-b": spawn("coord-b") };
    },
    async inject(r, run, note) {
      const lead = await leader(run);
      const site = COORDINATOR_SITE[lead]!;
      const kill = (name: string) => run.processes.get(name)!.kill();
      if (fault === "leader-loss") {
        note(`SIGKILL the leading coordinator ${lead} (site ${site})`);
        const at = Date.now();
        await kill(lead);
        return { at, endedAt: Date.now(), leader: lead };
      }
      if (fault === "site-cut") {
        const cut = between(r, 20_000, 60_000);
        note(`cut site ${network.cut.site} (leader ${lead} at site ${site}) off for ${cut} ms`);
        const at = Date.now();
        network.cut.cut();
        await sleep(cut);
        network.cut.heal();
        return { at, endedAt: Date.now(), leader: lead };
      }
      const peers = Object.keys(SITE_OF).filter((p) => p !== COORDINATOR_IDENTITY && SITE_OF[p] === site);
      const down = between(r, 20_000, 40_000);
      note(`SIGKILL site ${site} (node, ${peers.join(", ")}, leader ${lead}), restart the node and peers after ${down} ms`);
      const at = Date.now();
      await Promise.all([network.node(site).kill(), ...peers.map(kill), kill(lead)]);
      await sleep(down);
      await network.node(site).restart();
      for (const p of peers) run.restart(p);
      return { at, endedAt: Date.now(), lostPeers: peers, leader: lead };
    },
    async check(run, injected) {
      const broke: string[] = [];
      const lease = await leaseOf(run.panel);
      // The fault hits whichever coordinator led then (at start either may win the lease); the other stands by.
      const lead = injected.leader ?? "coord-a";
      const standby = lead === "coord-a" ? "coord-b" : "coord-a";
      const leaderCut = fault === "site-cut" && COORDINATOR_SITE[lead] === network.cut.site;
      if (leaderCut && !takenBy(lease, standby, injected.at, injected.endedAt).length)
        broke.push("the standby did not take the lease over while the leader's site was cut off");
      // A cut of a site the leader is not at must not move the lease to the cut-off coordinator.
      if (fault === "site-cut" && !leaderCut && takenBy(lease, standby, injected.at, injected.endedAt).length)
        broke.push("the coordinator of the cut-off site took the lease during the cut");
      if (fault !== "site-cut" && !takenBy(lease, standby, injected.at).length) broke.push("the standby never took the lease over");
      const control = await run.panel.control();
      // A coordinator measures a heartbeat's silence on its own clock from when its term began, so a
      // peer must have left only if it stayed away a lapse (and some slack) past the last takeover
      // before it came back (the standby may lead only once the two surviving nodes have elected).
      const led = Math.max(injected.at, ...(lease?.fences ?? []).map((f) => f.since).filter((t) => t <= injected.endedAt));
      const mustLeave = injected.endedAt - led > LAPSE_MS + 5000;
      for (const peer of injected.lostPeers ?? []) {
        const left = control.some((e) => e.event === "peer_left" && e.peer === peer && e.reason === "lapsed" && e.at >= injected.at);
        if (!left && mustLeave) broke.push(`${peer} did not leave by heartbeat when its site died`);
        if (!control.some((e) => e.event === "peer_joined" && e.peer === peer && e.at >= injected.endedAt))
          broke.push(`${peer} did not rejoin when its site came back`);
      }
      return broke;
    },
  };
}
