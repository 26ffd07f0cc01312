/**
 * Multi-site experiments: one hub server and one server per site, joined by leafnodes. The
 * experiment's streams, buckets and object store live in the hub's JetStream domain ("hub");
 * each site's server has a JetStream domain of its own (the site's name), and every process at a
 * site talks only to its local server, reaching the hub's JetStream with `--js-domain hub`.
 *
 * Trust: each server enforces the identities of its own clients with the `pop creds` config (the
 * same auth.conf everywhere, written with `--js-domain hub`); a site's leafnode logs in to the
 * hub as that site's link user, which may carry any of the account's subjects. The link binds
 * the experiment's account (`account`, the creds' account) at both ends, so it carries that
 * experiment only. The hub's
 * consumers still check every message (protocol/admit.ts), so a site can at worst speak for its
 * own peers.
 *
 * Link outages: while a site's link is down its processes keep running and keep their local
 * connection; JetStream requests fail (no responders) and are retried, deliveries the hub could
 * not hand over are redelivered, and heartbeats resume when the link heals.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { NAME_PATTERN, PopError } from "../../protocol/mod.ts";
import { NatsServer, freePorts, serverConfig, type NatsServerOptions } from "./nats-server.ts";

/** The JetStream domain of the hub, where the experiment lives. */
export const HUB_DOMAIN = "hub";

/** The sites asked for cannot be laid out (bad or clashing names). */
export class SiteLayoutError extends PopError {}

/** Who logs in to the hub's leafnode port for each site. */
export interface LinkUser {
  site: string;
  user: string;
  password: string;
}

/** Site names double as JetStream domains and server names: distinct, valid, not the hub's. */
export function checkSiteNames(sites: string[]): void {
  if (sites.length === 0) throw new SiteLayoutError("name at least one site");
  const seen = new Set<string>();
  for (const s of sites) {
    if (!NAME_PATTERN.test(s)) throw new SiteLayoutError(`site '${s}' is not a valid name: use a-z, 0-9, '-' or '_'`);
    if (s === HUB_DOMAIN) throw new SiteLayoutError(`a site cannot be called '${HUB_DOMAIN}': that is the hub's domain`);
    if (seen.has(s)) throw new SiteLayoutError(`site '${s}' is named twice`);
    seen.add(s);
  }
}

/** One link user per site, each with a fresh random password. */
export function linkUsers(sites: string[]): LinkUser[] {
  return sites.map((site) => ({ site, user: `leaf-${site}`, password: randomBytes(18).toString("base64url") }));
}

/** The hub server: domain "hub", listening for the sites' leafnodes. */
export function hubOptions(o: {
  leafPort: number;
  users: LinkUser[];
  advertise: string;
  include?: string[];
  port?: number;
  account?: string;
}): NatsServerOptions {
  return {
    name: HUB_DOMAIN,
    domain: HUB_DOMAIN,
    port: o.port,
    include: o.include,
    leafnodes: {
      listen: { port: o.leafPort, advertise: o.advertise, users: o.users.map(({ user, password }) => ({ user, password, account: o.account })) },
    },
  };
}

/** A site's server: its own domain, one leafnode link to the hub at `hub` (host:port). */
export function siteOptions(o: { link: LinkUser; hub: string; include?: string[]; port?: number; account?: string }): NatsServerOptions {
  const url = `nats-leaf://${encodeURIComponent(o.link.user)}:${encodeURIComponent(o.link.password)}@${o.hub}`;
  return { name: o.link.site, domain: o.link.site, port: o.port, include: o.include, leafnodes: { remotes: [url], remoteAccount: o.account } };
}

/** Options of {@link SiteNetwork.start}. */
export interface SiteNetworkOptions {
  sites: string[];
  /** Directory for every server's data (default: a new temporary one, removed on dispose). */
  dir?: string;
  /** Config files every server includes, e.g. the auth.conf of `pop creds --js-domain hub`. */
  include?: string[];
  /** The NATS account the links carry: the creds' account (CredsResult.account) when `include` has its auth.conf. */
  account?: string;
  /**
   * The host:port a site dials to reach the hub's leafnode port: by default the port itself;
   * tests put a proxy they control in between to cut a site's link.
   */
  linkTo?: (site: string, hubLeafPort: number) => string | Promise<string>;
  /** The address the hub gives its sites for reconnecting (default: the one the first site dials). */
  advertise?: (links: ReadonlyMap<string, string>) => string;
}

/** A hub and its sites on this machine: what the tests and a one-machine trial run. */
export class SiteNetwork {
  private constructor(
    readonly hub: NatsServer,
    readonly sites: Map<string, NatsServer>,
    readonly dir: string,
    private readonly ownsDir: boolean,
  ) {}

  static async start(o: SiteNetworkOptions): Promise<SiteNetwork> {
    checkSiteNames(o.sites);
    const ownsDir = !o.dir;
    const dir = o.dir ?? mkdtempSync(join(tmpdir(), "pop-sites-"));
    const users = linkUsers(o.sites);
    const [leafPort] = await freePorts(1);
    const links = new Map<string, string>();
    for (const { site } of users) links.set(site, o.linkTo ? await o.linkTo(site, leafPort!) : `127.0.0.1:${leafPort}`);
    const advertise = o.advertise?.(links) ?? links.get(o.sites[0]!)!;
    const hub = await NatsServer.start({
      ...hubOptions({ leafPort: leafPort!, users, advertise, include: o.include, account: o.account }),
      dir: join(dir, HUB_DOMAIN),
      cleanup: false,
    });
    const sites = new Map<string, NatsServer>();
    try {
      for (const link of users) {
        sites.set(
          link.site,
          await NatsServer.start({
            ...siteOptions({ link, hub: links.get(link.site)!, include: o.include, account: o.account }),
            dir: join(dir, link.site),
            cleanup: false,
          }),
        );
      }
    } catch (error) {
      await Promise.all([hub, ...sites.values()].map((s) => s.stop("SIGKILL")));
      throw error;
    }
    return new SiteNetwork(hub, sites, dir, ownsDir);
  }

  /** The client URL of a site's server. */
  url(site: string): string {
    const s = this.sites.get(site);
    if (!s) throw new SiteLayoutError(`no site '${site}'`);
    return s.url;
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.sites.values(), this.hub].map((s) => s.stop()));
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What `pop site` writes. */
export interface SiteFiles {
  dir: string;
  hub: string;
  sites: { site: string; config: string; port: number }[];
}

/**
 * Writes one config per server for a multi-site run: `hub.conf` and `site-<name>.conf`, each
 * with its data directory beside it. The sites' configs dial `hubHost:leafPort`; the link users'
 * passwords are in both ends' configs (mode 0600).
 */
export function writeSiteConfigs(o: {
  sites: string[];
  out: string;
  hubHost: string;
  hubPort: number;
  leafPort: number;
  sitePortBase: number;
  include?: string[];
  account?: string;
}): SiteFiles {
  checkSiteNames(o.sites);
  const dir = resolve(o.out);
  mkdirSync(dir, { recursive: true });
  const users = linkUsers(o.sites);
  const write = (name: string, options: NatsServerOptions, port: number, host: string) => {
    const data = join(dir, name);
    mkdirSync(data, { recursive: true });
    const file = join(dir, `${name}.conf`);
    writeFileSync(file, serverConfig(options, { dir: data, port, host, confDir: dir }), { mode: 0o600 });
    return file;
  };
  const hub = write(
    "hub",
    hubOptions({ leafPort: o.leafPort, users, advertise: `${o.hubHost}:${o.leafPort}`, include: o.include, account: o.account }),
    o.hubPort,
    "0.0.0.0",
  );
  const sites = users.map((link, i) => {
    const port = o.sitePortBase + i;
    return {
      site: link.site,
      port,
      config: write(`site-${link.site}`, siteOptions({ link, hub: `${o.hubHost}:${o.leafPort}`, include: o.include, account: o.account }), port, "0.0.0.0"),
    };
  });
  return { dir, hub, sites };
}
