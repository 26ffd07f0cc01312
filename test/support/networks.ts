/**
 * The NATS servers an end-to-end panel runs on (test/support/panel.ts): one server, a 3-node
 * cluster, a hub with two leafnode sites, a cluster stretched across three sites, or one server
 * that requires per-identity keys. Each
 * says how a process of an identity dials it and gives the test a connection of its own.
 */
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { connectNats } from "../../deploy/cli/connect.ts";
import { COORDINATOR_IDENTITY, seedFileOf, writeCreds, type CredsResult } from "../../deploy/ops/creds.ts";
import { natsTarget } from "../../deploy/ops/nats-options.ts";
import { NatsCluster, NatsServer, freePorts } from "../../deploy/ops/nats-server.ts";
import { CLUSTER_NAME, writeClusterConfigs, type ClusterFiles } from "../../deploy/ops/site-cluster.ts";
import { HUB_DOMAIN, SiteNetwork } from "../../deploy/ops/sites.ts";
import { ensureTopology, openManager } from "../../protocol/mod.ts";
import { startLinkProxy, type LinkProxy } from "./link-proxy.ts";
import { wireSiteCut, type SiteCut } from "./site-cut.ts";
import { eventually, natsConnect } from "./nats.ts";
import { endWithTest, once } from "./lifetime.ts";
import { removeScratch, scratchDir } from "./scratch.ts";

/** Where a panel's servers are and how each identity reaches them. */
export interface PanelNetwork extends AsyncDisposable {
  /** The connection flags of a `pop` process running as `identity` (the coordinator or a peer). */
  flags(identity: string): string[];
  /** A connection for the test itself, with the coordinator's rights, once the topology is in place. */
  admin(name: string): Promise<NatsConnection>;
  /** Closes the connections it gave, stops every server and removes their files; safe to call twice. */
  dispose(): Promise<void>;
}

/** Directory options shared by the networks: without `dir`, a scratch directory of their own. */
interface WhereOptions {
  dir?: string;
}

function placed(o: WhereOptions, prefix: string): { dir: string; release(): void } {
  if (o.dir) return { dir: o.dir, release: () => undefined };
  const dir = scratchDir(prefix);
  return { dir, release: () => removeScratch(dir) };
}

/** What every network shares: its connections and its end, tied to the test that started it. */
abstract class Network implements PanelNetwork {
  readonly dispose: () => Promise<void>;
  protected readonly conns: NatsConnection[] = [];
  protected constructor(stop: () => Promise<void>, release: () => void) {
    this.dispose = once(async () => {
      await Promise.all(this.conns.map((c) => c.close().catch(() => undefined)));
      await stop();
      release();
    });
    endWithTest(this.dispose);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  protected kept(nc: NatsConnection): NatsConnection {
    this.conns.push(nc);
    return nc;
  }

  abstract flags(identity: string): string[];
  abstract admin(name: string): Promise<NatsConnection>;
}

/** One JetStream server, no credentials: what most end-to-end tests run on. */
export class SingleServer extends Network {
  private constructor(
    readonly server: NatsServer,
    release: () => void,
  ) {
    super(() => server.dispose(), release);
  }

  static async start(o: WhereOptions = {}): Promise<SingleServer> {
    const where = placed(o, "pop-nats-");
    return new SingleServer(await NatsServer.start({ dir: join(where.dir, "nats") }), where.release);
  }

  get url(): string {
    return this.server.url;
  }

  flags(): string[] {
    return ["--server", this.server.url];
  }

  async admin(name: string): Promise<NatsConnection> {
    const nc = this.kept(await natsConnect(this.server.url, name));
    await ensureTopology(nc);
    return nc;
  }
}

/** A JetStream cluster (3 nodes by default), every stream and bucket R3. */
export class ClusterNetwork extends Network {
  private constructor(
    readonly cluster: NatsCluster,
    release: () => void,
  ) {
    super(() => cluster.dispose(), release);
  }

  static async start(o: WhereOptions & { size?: number } = {}): Promise<ClusterNetwork> {
    const where = placed(o, "pop-cluster-");
    return new ClusterNetwork(await NatsCluster.start(o.size ?? 3, { dir: join(where.dir, "cluster") }), where.release);
  }

  get urls(): string[] {
    return this.cluster.urls;
  }

  /**
   * Every node, starting at one that depends on the identity: processes dial their list in
   * order (deploy/ops/nats-options.ts), so this spreads them over the nodes as a random pick did.
   */
  flags(identity: string): string[] {
    const urls = this.cluster.urls;
    const first = [...identity].reduce((sum, c) => sum + c.charCodeAt(0), 0) % urls.length;
    return ["--server", [...urls.slice(first), ...urls.slice(0, first)].join(",")];
  }

  async admin(name: string): Promise<NatsConnection> {
    const nc = this.kept(await natsConnect(this.cluster.urls, name));
    // A fresh cluster elects its JetStream meta leader first; until then, every request fails.
    await eventually(async () => (await (await openManager(nc)).getAccountInfo(), true), 30_000, "JetStream meta leader");
    await eventually(() => ensureTopology(nc, { replicas: 3 }), 30_000, "the R3 topology");
    return nc;
  }
}

/**
 * A hub and leafnode sites (deploy/ops/sites.ts) with credentials on everywhere: the coordinator
 * dials the hub, each peer its site. The link of site `cut` goes through a proxy the test can cut.
 */
export class SitesNetwork extends Network {
  private constructor(
    readonly net: SiteNetwork,
    readonly creds: CredsResult,
    private readonly siteOf: Record<string, string>,
    private readonly proxy: LinkProxy | undefined,
    release: () => void,
  ) {
    super(async () => {
      await net.dispose();
      await proxy?.close();
    }, release);
  }

  static async start(o: WhereOptions & { experiment: string; siteOf: Record<string, string>; cut: string }): Promise<SitesNetwork> {
    const where = placed(o, "pop-sites-");
    const creds = writeCreds({ experiment: o.experiment, peers: Object.keys(o.siteOf), out: join(where.dir, "creds"), jsDomain: HUB_DOMAIN });
    let link: LinkProxy | undefined;
    const net = await SiteNetwork.start({
      sites: [...new Set(Object.values(o.siteOf))].sort(),
      dir: join(where.dir, "servers"),
      include: [creds.authConf],
      account: creds.account,
      linkTo: async (site, port) => (site === o.cut ? (link = await startLinkProxy(port)).address : `127.0.0.1:${port}`),
      // The cut site must come back through its link, not around it.
      advertise: (links) => links.get(o.cut)!,
    });
    return new SitesNetwork(net, creds, o.siteOf, link, where.release);
  }

  /** The cut site's link to the hub. */
  get link(): LinkProxy {
    return this.proxy!;
  }

  flags(identity: string): string[] {
    const url = identity === COORDINATOR_IDENTITY ? this.net.hub.url : this.net.url(this.siteOf[identity]!);
    return ["--server", url, "--nkey", seedFileOf(this.creds.dir, identity), "--js-domain", HUB_DOMAIN];
  }

  async admin(name: string): Promise<NatsConnection> {
    const nc = this.kept(
      await connectNats(natsTarget(this.net.hub.url, { nkey: seedFileOf(this.creds.dir, COORDINATOR_IDENTITY), jsDomain: HUB_DOMAIN }), name),
    );
    await ensureTopology(nc);
    return nc;
  }
}

/**
 * A JetStream cluster stretched across sites, run from the very configs `pop site --layout
 * cluster` writes (deploy/ops/site-cluster.ts), credentials on: one node per site on loopback,
 * each process dialling its own site's node first and the others as fallbacks. The topology is
 * created without naming replicas: it must come out R3 by itself on a cluster. With `cut`, that
 * site's routes and its processes' links to the other sites go through proxies the test can cut
 * (test/support/site-cut.ts).
 */
export class SiteClusterNetwork extends Network {
  private constructor(
    readonly nodes: Map<string, NatsServer>,
    readonly files: ClusterFiles,
    readonly creds: CredsResult,
    private readonly siteOf: Record<string, string>,
    private readonly siteCut: SiteCut | undefined,
    release: () => void,
  ) {
    super(async () => {
      await Promise.all([...nodes.values()].map((n) => n.stop()));
      await siteCut?.close();
    }, release);
  }

  /** `siteOf` places every identity (the coordinator's included) at a site; `cut` names a site the test can cut off. */
  static async start(o: WhereOptions & { experiment: string; siteOf: Record<string, string>; cut?: string }): Promise<SiteClusterNetwork> {
    const where = placed(o, "pop-site-cluster-");
    const sites = [...new Set(Object.values(o.siteOf))].sort();
    const peers = Object.keys(o.siteOf).filter((p) => p !== COORDINATOR_IDENTITY);
    const creds = writeCreds({ experiment: o.experiment, peers, out: join(where.dir, "creds") });
    const ports = await freePorts(sites.length * 2);
    const files = writeClusterConfigs({
      sites: sites.map((name, i) => ({ name, host: "127.0.0.1", clientPort: ports[2 * i]!, routePort: ports[2 * i + 1]! })),
      out: join(where.dir, "sites"),
      include: [creds.authConf],
      listenHost: "127.0.0.1",
    });
    const siteCut = o.cut
      ? await wireSiteCut(
          files,
          sites.map((site, i) => ({ site, clientPort: ports[2 * i]!, routePort: ports[2 * i + 1]! })),
          o.cut,
        )
      : undefined;
    const nodes = new Map<string, NatsServer>();
    try {
      for (const [i, s] of files.sites.entries()) {
        const dir = join(files.dir, `node-${s.site}`);
        const cluster = { name: CLUSTER_NAME, port: ports[2 * i + 1]!, routes: [] };
        nodes.set(s.site, await NatsServer.start({ dir, configFile: s.config, cluster, cleanup: false }));
      }
    } catch (error) {
      await Promise.all([...nodes.values()].map((n) => n.stop("SIGKILL")));
      await siteCut?.close();
      where.release();
      throw error;
    }
    return new SiteClusterNetwork(nodes, files, creds, o.siteOf, siteCut, where.release);
  }

  /** A site's node. */
  node(site: string): NatsServer {
    return this.nodes.get(site)!;
  }

  /** The proxies that cut the `cut` site off (started with `cut` only). */
  get cut(): SiteCut {
    return this.siteCut!;
  }

  /** The servers `identity` dials, its own site's node first. */
  servers(identity: string): string {
    return this.serversAt(this.siteOf[identity]!);
  }

  /** The servers a process at `site` dials, that site's node first. */
  serversAt(site: string): string {
    return this.files.sites.find((s) => s.site === site)!.servers.join(",");
  }

  flags(identity: string): string[] {
    return this.flagsAt(identity, this.siteOf[identity]!);
  }

  /** The connection flags of `identity` running at `site` (e.g. a standby coordinator at another site). */
  flagsAt(identity: string, site: string): string[] {
    return ["--server", this.serversAt(site), "--nkey", seedFileOf(this.creds.dir, identity)];
  }

  async admin(name: string): Promise<NatsConnection> {
    const target = natsTarget(this.servers(COORDINATOR_IDENTITY), { nkey: seedFileOf(this.creds.dir, COORDINATOR_IDENTITY) });
    const nc = this.kept(await connectNats(target, name));
    await eventually(async () => (await (await openManager(nc)).getAccountInfo(), true), 30_000, "JetStream meta leader");
    await eventually(() => ensureTopology(nc), 30_000, "the topology");
    return nc;
  }
}

/** One server that requires an experiment's per-identity keys (`pop creds`), the observer's included. */
export class CredentialedServer extends Network {
  private constructor(
    readonly server: NatsServer,
    readonly creds: CredsResult,
    readonly dir: string,
    release: () => void,
  ) {
    super(() => server.dispose(), release);
  }

  static async start(o: WhereOptions & { experiment: string; peers: string[] }): Promise<CredentialedServer> {
    const where = placed(o, "pop-creds-");
    const creds = writeCreds({ experiment: o.experiment, peers: o.peers, out: join(where.dir, "creds"), observer: true });
    return new CredentialedServer(await NatsServer.start({ dir: join(where.dir, "nats"), include: [creds.authConf] }), creds, where.dir, where.release);
  }

  /** A connection with `identity`'s key (its refusals logged to `log`), closed with the server. */
  async as(identity: string, log?: Logger): Promise<NatsConnection> {
    return this.kept(await connectNats({ servers: this.server.url, auth: { nkey: seedFileOf(this.creds.dir, identity) } }, `test-${identity}`, log));
  }

  flags(identity: string): string[] {
    return ["--server", this.server.url, "--nkey", seedFileOf(this.creds.dir, identity)];
  }

  async admin(): Promise<NatsConnection> {
    const nc = await this.as(COORDINATOR_IDENTITY);
    await ensureTopology(nc);
    return nc;
  }
}
