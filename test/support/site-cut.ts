/**
 * Cutting one site of a stretched cluster (deploy/ops/site-cluster.ts) off the others, the way
 * test/support/link-proxy.ts cuts a leafnode's link: the configs `pop site --layout cluster`
 * wrote are rewired so that every route between the cut site's node and another site's, and
 * every link from the cut site's processes to another site's node, passes through a TCP proxy.
 * Cutting destroys them all and refuses new ones; the site keeps its own node and its own
 * processes' links to it, as a lab whose uplink drops does.
 *
 * Route gossip would route around the proxies (nats-server 2.9 tells each node the others'
 * listen addresses and dials them as implicit routes, even with no_advertise), so every node
 * advertises an address nobody listens on: only the configured routes, proxied, ever connect.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { ClusterFiles } from "../../deploy/ops/site-cluster.ts";
import { startLinkProxy, type LinkProxy } from "./link-proxy.ts";

/** A route gossip address that refuses every connection (port 1 on loopback has no listener). */
const NOWHERE = "127.0.0.1:1";

/** The proxies that cut one site off. */
export interface SiteCut {
  readonly site: string;
  readonly isCut: boolean;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

/** Ports of one site's node on loopback. */
interface Ports {
  site: string;
  clientPort: number;
  routePort: number;
}

/**
 * Rewires `files` (not yet started) so that site `cut` can be cut off: its routes (both
 * directions) and its processes' fallback links go through proxies; `files.sites[].servers`
 * of the cut site are updated to dial the proxies.
 */
export async function wireSiteCut(files: ClusterFiles, ports: Ports[], cut: string): Promise<SiteCut> {
  const own = ports.find((p) => p.site === cut)!;
  const proxies: LinkProxy[] = [];
  const proxy = async (port: number) => {
    const p = await startLinkProxy(port);
    proxies.push(p);
    return p.address;
  };
  const rewrite = (site: string, edit: (text: string) => string) => {
    const file = files.sites.find((s) => s.site === site)!.config;
    writeFileSync(file, edit(readFileSync(file, "utf8")), { mode: 0o600 });
  };
  for (const other of ports.filter((p) => p !== own)) {
    const out = await proxy(other.routePort);
    const inbound = await proxy(own.routePort);
    rewrite(cut, (t) => t.replaceAll(`@127.0.0.1:${other.routePort}"`, `@${out}"`));
    rewrite(other.site, (t) => t.replaceAll(`@127.0.0.1:${own.routePort}"`, `@${inbound}"`));
    const client = await proxy(other.clientPort);
    const servers = files.sites.find((s) => s.site === cut)!.servers;
    servers.splice(servers.indexOf(`nats://127.0.0.1:${other.clientPort}`), 1, `nats://${client}`);
  }
  for (const p of ports) rewrite(p.site, (t) => t.replace("no_advertise: true", `no_advertise: true, advertise: ${JSON.stringify(NOWHERE)}`));
  let isCut = false;
  return {
    site: cut,
    get isCut() {
      return isCut;
    },
    cut() {
      isCut = true;
      for (const p of proxies) p.cut();
    },
    heal() {
      isCut = false;
      for (const p of proxies) p.heal();
    },
    close: async () => void (await Promise.all(proxies.map((p) => p.close()))),
  };
}
