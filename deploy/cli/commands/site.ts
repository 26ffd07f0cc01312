/**
 * `pop site`: nats-server configs for a multi-site experiment, in one of two layouts: a hub and
 * sites joined by leafnodes (deploy/ops/sites.ts), or one JetStream cluster stretched across the
 * sites (deploy/ops/site-cluster.ts).
 */
import { UsageError, type Flags } from "../args.ts";
import { CredsSetupError, credsAccount } from "../../ops/creds.ts";
import { type ClusterSite, writeClusterConfigs } from "../../ops/site-cluster.ts";
import { HUB_DOMAIN, SiteLayoutError, writeSiteConfigs } from "../../ops/sites.ts";

/** The layouts `pop site --layout` writes. */
export const LAYOUTS = ["hub", "cluster"] as const;
export type Layout = (typeof LAYOUTS)[number];

export const siteHelp = `pop site --sites A,B --hub-host HOST --out DIR [options]                  (layout hub)
pop site --layout cluster --sites A,B,C --hosts A=HOST,B=HOST,C=HOST --out DIR [options]

Writes one nats-server config per server of a multi-site experiment (docs/sites.md, "Choosing a
layout"). --layout picks how the servers are joined:

  hub (default)  DIR/hub.conf for the hub, where the experiment's streams live (JetStream domain
                 "${HUB_DOMAIN}"), and DIR/site-<name>.conf for each site, whose server joins the
                 hub by an outbound leafnode and has a JetStream domain of its own. Each site's
                 processes talk only to their site's server and pass --js-domain ${HUB_DOMAIN}.
                 Survives losing any site but the hub's; sites open nothing inbound.
  cluster        DIR/node-<name>.conf for each site: one JetStream cluster stretched across 3 or
                 more sites, joined by routes, every stream and bucket R3 with one replica per
                 site (server_tags site:<name>, unique_tag site:). Survives losing any one site;
                 each site opens its route port to the others; each write waits for a second
                 site. DIR/README-<name>.txt says what to open and run there, and the --server
                 list (own node first) its processes take.

With --creds (the directory of pop creds; for the hub layout made with --js-domain ${HUB_DOMAIN})
every server requires those credentials (the experiment's account: pop creds makes one per
experiment; the hub layout's leafnode links carry it). Start each server with nats-server -c <file> on its host.

  --layout L           hub or cluster                                       default: hub
  --sites A,B          site names (also the hub layout's JetStream domains) required
  --out DIR            where to write the configs and data directories      required
  --creds DIR          include DIR/auth.conf (from pop creds) in every config
  --site-port N        hub: the first site's client port (the next +1 ...)  default: 4222
                       cluster: every node's client port                    default: 4222
 hub layout:
  --hub-host HOST      the address sites reach the hub at                   required
  --hub-port N         the hub's client port                                default: 4222
  --leaf-port N        the hub's leafnode port (open it to the sites)       default: 7422
 cluster layout:
  --hosts LIST         SITE=HOST,SITE=HOST,...: where each site's node is   required
                       reached by the other sites (routes) and fallback clients
  --route-port N       every node's route port (open it to the other sites) default: 6222
                       (sites sharing a host get the next free client and route ports)

A hub-layout site keeps running while its link to the hub is down: its processes retry, and
what the hub could not deliver meanwhile is delivered, or caught up by the peers, once the link is
back. In the cluster layout a process whose node dies moves to the next node of its list.`;

/** Each site's host and ports: the given ports, the next ones for a site sharing a host with an earlier one. */
export function clusterSites(sites: string[], hosts: Map<string, string>, clientPort: number, routePort: number): ClusterSite[] {
  for (const name of hosts.keys()) if (!sites.includes(name)) throw new SiteLayoutError(`--hosts names '${name}', which is not in --sites`);
  const seen = new Map<string, number>();
  return sites.map((name) => {
    const host = hosts.get(name);
    if (!host) throw new SiteLayoutError(`--hosts gives no host for site '${name}'`);
    const before = seen.get(host) ?? 0;
    seen.set(host, before + 1);
    return { name, host, clientPort: clientPort + before, routePort: routePort + before };
  });
}

function parseHosts(text: string | undefined): Map<string, string> {
  const hosts = new Map<string, string>();
  for (const item of (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1) throw new UsageError(`--hosts takes SITE=HOST items, got '${item}'`, siteHelp);
    hosts.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return hosts;
}

export async function runSite(flags: Flags): Promise<void> {
  const sites = flags
    .string("sites")
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const layout = flags.string("layout") ?? "hub";
  if (!(LAYOUTS as readonly string[]).includes(layout)) throw new UsageError(`--layout must be ${LAYOUTS.join(" or ")}, got '${layout}'`, siteHelp);
  if (layout === "cluster") return runClusterLayout(flags, sites);
  const hubHost = flags.string("hub-host");
  const out = flags.string("out");
  const hubPort = flags.int("hub-port", { min: 1, max: 65535 }) ?? 4222;
  const leafPort = flags.int("leaf-port", { min: 1, max: 65535 }) ?? 7422;
  const sitePortBase = flags.int("site-port", { min: 1, max: 65535 }) ?? 4222;
  const creds = flags.string("creds");
  for (const f of ["hosts", "route-port"]) if (flags.has(f)) throw new UsageError(`--${f} belongs to --layout cluster`, siteHelp);
  flags.rejectUnknown();
  if (!sites?.length) throw new UsageError("--sites is required", siteHelp);
  if (!hubHost) throw new UsageError("--hub-host is required", siteHelp);
  if (!out) throw new UsageError("--out is required", siteHelp);
  let files;
  try {
    const account = creds ? credsAccount(creds) : undefined;
    files = writeSiteConfigs({ sites, out, hubHost, hubPort, leafPort, sitePortBase, include: creds ? [`${creds}/auth.conf`] : [], account });
  } catch (error) {
    if (error instanceof SiteLayoutError || error instanceof CredsSetupError) throw new UsageError(error.message, siteHelp);
    throw error;
  }
  process.stdout.write(`hub          ${files.hub}   (clients on port ${hubPort}, sites' leafnodes on ${leafPort})\n`);
  for (const s of files.sites) process.stdout.write(`site ${s.site.padEnd(8)}${files.dir}/site-${s.site}.conf   (clients on port ${s.port})\n`);
  process.stdout.write(
    `start each with: nats-server -c <file>; every pop command at a site takes --server nats://<site host>:<port> --js-domain ${HUB_DOMAIN}\n`,
  );
}

async function runClusterLayout(flags: Flags, sites: string[] | undefined): Promise<void> {
  const out = flags.string("out");
  const hosts = parseHosts(flags.string("hosts"));
  const clientPort = flags.int("site-port", { min: 1, max: 65535 }) ?? 4222;
  const routePort = flags.int("route-port", { min: 1, max: 65535 }) ?? 6222;
  const creds = flags.string("creds");
  for (const f of ["hub-host", "hub-port", "leaf-port"]) if (flags.has(f)) throw new UsageError(`--${f} belongs to --layout hub`, siteHelp);
  flags.rejectUnknown();
  if (!sites?.length) throw new UsageError("--sites is required", siteHelp);
  if (!hosts.size) throw new UsageError("--hosts is required with --layout cluster", siteHelp);
  if (!out) throw new UsageError("--out is required", siteHelp);
  let files;
  try {
    files = writeClusterConfigs({ sites: clusterSites(sites, hosts, clientPort, routePort), out, include: creds ? [`${creds}/auth.conf`] : [] });
  } catch (error) {
    if (error instanceof SiteLayoutError) throw new UsageError(error.message, siteHelp);
    throw error;
  }
  for (const s of files.sites) {
    process.stdout.write(`site ${s.site.padEnd(8)}${s.config}   (read ${s.readme})\n             --server ${s.servers.join(",")}\n`);
  }
  process.stdout.write("start each with: nats-server -c <file> on its site's host, all of them before the coordinator; no --js-domain\n");
}
