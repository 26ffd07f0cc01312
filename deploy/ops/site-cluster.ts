/**
 * The "cluster" layout of a multi-site experiment: one JetStream cluster stretched across the
 * sites, one node per site, joined by routes. Each node is tagged `site:<name>` and JetStream's
 * `unique_tag: "site:"` keeps the replicas of a stream on different sites, so every R3 stream
 * and bucket (protocol/topology.ts makes them R3 on a cluster) has one copy at each of three
 * sites and survives losing any one site. The price: a write is acknowledged once a second site
 * has it, so every publish waits for an inter-site round trip.
 *
 * Why not a super-cluster (clusters joined by gateways): there a stream lives in one cluster,
 * so losing that cluster's site loses the stream. Why not leafnodes: that is the hub layout
 * (deploy/ops/sites.ts), where the hub's site holds everything.
 *
 * Trust: clients log in with the `pop creds` auth.conf every node includes (no JetStream
 * domain); routes log in with a route user and password of their own, written into every
 * node's config (mode 0600).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { serverConfig, type NatsServerOptions } from "./nats-server.ts";
import { SiteLayoutError, checkSiteNames } from "./sites.ts";

/** The tag prefix that keeps a stream's replicas on different sites. */
export const SITE_TAG_PREFIX = "site:";
/** The cluster's name. */
export const CLUSTER_NAME = "pop";
/** The user every route logs in as. */
export const ROUTE_USER = "pop-route";

/** One site of the cluster layout: where its node is reached and on which ports. */
export interface ClusterSite {
  name: string;
  /** The address the other sites reach this site's node at (its route port must be open to them). */
  host: string;
  /** The node's client port: its own site's processes connect here first, the others' as a fallback. */
  clientPort: number;
  routePort: number;
}

/** The server name of a site's node. */
export const nodeName = (site: string): string => `pop-${site}`;

/** A stretched cluster needs three sites at least: R3 with one replica per site. */
export function checkClusterSites(sites: ClusterSite[]): void {
  checkSiteNames(sites.map((s) => s.name));
  if (sites.length < 3) throw new SiteLayoutError(`the cluster layout needs at least 3 sites (one replica at each of 3), not ${sites.length}`);
  for (const s of sites) {
    if (!s.host || /[\s/@,]/.test(s.host)) throw new SiteLayoutError(`site '${s.name}' has no usable host ('${s.host}')`);
  }
}

/** The `nats://host:port` URLs a process at `site` dials: its own node first, then the others in order. */
export function clientServers(sites: ClusterSite[], site: string): string[] {
  const own = sites.find((s) => s.name === site);
  if (!own) throw new SiteLayoutError(`no site '${site}'`);
  return [own, ...sites.filter((s) => s !== own)].map((s) => `nats://${s.host}:${s.clientPort}`);
}

/** The server options of `site`'s node: tagged, routed to every node with the route user. */
export function clusterNodeOptions(o: { sites: ClusterSite[]; site: string; routePassword: string; include?: string[] }): NatsServerOptions {
  const own = o.sites.find((s) => s.name === o.site);
  if (!own) throw new SiteLayoutError(`no site '${o.site}'`);
  const auth = `${encodeURIComponent(ROUTE_USER)}:${encodeURIComponent(o.routePassword)}`;
  return {
    name: nodeName(own.name),
    port: own.clientPort,
    tags: [`${SITE_TAG_PREFIX}${own.name}`],
    uniqueTag: SITE_TAG_PREFIX,
    include: o.include,
    cluster: {
      name: CLUSTER_NAME,
      port: own.routePort,
      noAdvertise: true,
      authorization: { user: ROUTE_USER, password: o.routePassword },
      routes: o.sites.filter((s) => s !== own).map((s) => `nats-route://${auth}@${s.host}:${s.routePort}`),
    },
  };
}

/** What {@link writeClusterConfigs} wrote. */
export interface ClusterFiles {
  dir: string;
  sites: { site: string; config: string; readme: string; servers: string[] }[];
}

/**
 * Writes, for each site, `node-<site>.conf` (its data directory beside it) and
 * `README-<site>.txt` saying what to open and what to run there. One random route password
 * for all nodes. `host` is what the config listens on (default every interface).
 */
export function writeClusterConfigs(o: { sites: ClusterSite[]; out: string; include?: string[]; listenHost?: string }): ClusterFiles {
  checkClusterSites(o.sites);
  const dir = resolve(o.out);
  mkdirSync(dir, { recursive: true });
  const routePassword = randomBytes(18).toString("base64url");
  const listen = o.listenHost ?? "0.0.0.0";
  const sites = o.sites.map((s) => {
    const data = join(dir, `node-${s.name}`);
    mkdirSync(data, { recursive: true });
    const config = join(dir, `node-${s.name}.conf`);
    const options = clusterNodeOptions({ sites: o.sites, site: s.name, routePassword, include: o.include });
    writeFileSync(config, serverConfig(options, { dir: data, port: s.clientPort, clusterPort: s.routePort, host: listen, confDir: dir }), { mode: 0o600 });
    const servers = clientServers(o.sites, s.name);
    const readme = join(dir, `README-${s.name}.txt`);
    writeFileSync(readme, siteReadme(o.sites, s, servers, Boolean(o.include?.length)));
    return { site: s.name, config, readme, servers };
  });
  return { dir, sites };
}

function siteReadme(all: ClusterSite[], s: ClusterSite, servers: string[], creds: boolean): string {
  const others = all.filter((x) => x !== s);
  const key = (who: string) => (creds ? ` --nkey creds/${who}.nk` : "");
  return `Site ${s.name}: node ${nodeName(s.name)} of the JetStream cluster "${CLUSTER_NAME}" stretched across ${all.map((x) => x.name).join(", ")}.
Every stream and bucket keeps one replica at each of three sites, so the experiment survives
losing any one site; each write waits for a second site to store it.

Open on this host:
  - route port ${s.routePort}/tcp, inbound from ${others.map((x) => `${x.host} (${x.name})`).join(", ")}
    (and outbound to the same hosts' route ports ${others.map((x) => `${x.host}:${x.routePort}`).join(", ")})
  - client port ${s.clientPort}/tcp, for this site's processes; the other sites' processes also
    fall back to it when their own node is down, so open it to them too.

Start the node (copy this directory and the creds directory here first):
  nats-server -c node-${s.name}.conf

Every pop command at this site takes (own node first, the others as fallbacks):
  --server ${servers.join(",")}${key("<identity>")}
for example:
  npm run pop -- actor --peer <peer> --experiment <exp> --server ${servers.join(",")}${key("<peer>")}
  npm run pop -- coordinator --experiment <exp> --config <config.json> --server ${servers.join(",")}${key("coordinator")}
No --js-domain: the cluster is one JetStream domain. Streams are created R3 when the
coordinator (or pop pool) first sets them up, so start all three nodes before it.
`;
}
