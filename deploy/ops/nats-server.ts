/**
 * Starts and stops real nats-server processes on free ports, with JetStream in a store directory
 * of their own. Used by the demo (an embedded server) and by the tests (single servers and a
 * 3-node cluster). Ports come from the server itself (`-1` plus a ports file), so nothing races
 * for a port chosen in advance.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { PopError } from "../../protocol/mod.ts";

/** nats-server could not be found or did not come up. */
export class NatsServerError extends PopError {}

/** Finds the nats-server binary: $NATS_SERVER_BIN, then PATH. */
export function findNatsServer(): string {
  const env = process.env.NATS_SERVER_BIN;
  if (env) {
    if (!existsSync(env)) throw new NatsServerError(`NATS_SERVER_BIN=${env} does not exist`);
    return env;
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "nats-server");
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new NatsServerError("nats-server is not on PATH. Run `bash deploy/ops/ensure-nats.sh` (installs Debian's package as root) or set NATS_SERVER_BIN.");
}

/** The version the binary reports, e.g. "2.9.10". */
export function natsServerVersion(bin = findNatsServer()): string {
  const out = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return (out.stdout || out.stderr).trim().replace(/^nats-server:\s*v?/, "");
}

export interface NatsServerOptions {
  /** Directory for JetStream data, config, ports file and log. Default: a new temporary directory. */
  dir?: string;
  /** Server name (required in a cluster). Default "pop". */
  name?: string;
  /** Client port; -1 (default) lets the server pick a free one. */
  port?: number;
  /** Cluster membership, for JetStream clusters. */
  cluster?: ClusterOptions;
  /** JetStream domain (for leafnode set-ups). */
  domain?: string;
  /** `server_tags`, e.g. `site:lab1`: JetStream places replicas by them (deploy/ops/site-cluster.ts). */
  tags?: string[];
  /**
   * JetStream's `unique_tag` prefix, e.g. `site:`: no two replicas of a stream go to servers
   * whose tags with this prefix are equal, so an R3 stream keeps one replica per site.
   */
  uniqueTag?: string;
  /**
   * Run this existing config file as it is instead of generating one (what `pop site --layout
   * cluster` wrote); the other options then only describe it (`cluster`: wait for its route port).
   */
  configFile?: string;
  /** Leafnode links: a hub listens (with one user per site), a site connects out (deploy/ops/sites.ts). */
  leafnodes?: LeafnodeOptions;
  /** Extra lines appended to the generated config. */
  extraConfig?: string;
  /**
   * Account files the generated config includes inside its `accounts { }` block: the `auth.conf`
   * that `pop creds` writes (one experiment's account, its users and its limits). The server then
   * requires those credentials. Several experiments' files may be included together.
   */
  include?: string[];
  /** Remove the directory on stop (default: true when the directory was created here). */
  cleanup?: boolean;
  /**
   * The server ends when this process ends, however it ends (the demo's embedded server). It runs
   * in a process group of its own, so a terminal's Ctrl-C reaches only this process, which stops
   * the peers before the server; and a guard process (deploy/ops/guard.mjs) stops it if this process
   * dies without doing so (a SIGKILL, a crash). A guard rather than a wrapper: the server stays
   * this process's own child, with its own pid, for stop(), kill() and the ports file.
   */
  tiedToThisProcess?: boolean;
}

/** A server's `cluster { ... }` block: its name, route port and the routes to its peers. */
export interface ClusterOptions {
  name: string;
  port?: number;
  /** `nats-route://[user:password@]host:port` of every node (its own is ignored by the server). */
  routes: string[];
  /** The user and password every node's routes log in with (the routes carry it too). */
  authorization?: { user: string; password: string };
  /**
   * Do not tell clients the other nodes' client addresses: at other sites they are often not
   * reachable as the node sees them; clients use the fallbacks they were given instead.
   */
  noAdvertise?: boolean;
}

/**
 * A nats-server config for `o`, its JetStream data in `dir`/js. Written by the launcher and by
 * `pop site`, so a hand-started server runs what the tests run. Include paths become relative
 * to `confDir` (default `dir`), where the config file goes: nats-server 2.9 resolves them
 * against it, even absolute ones.
 */
export function serverConfig(o: NatsServerOptions, at: { dir: string; port: number; clusterPort?: number; host?: string; confDir?: string }): string {
  const host = at.host ?? "127.0.0.1";
  const js = [`store_dir: ${JSON.stringify(join(at.dir, "js"))}`];
  if (o.domain) js.push(`domain: ${o.domain}`);
  if (o.uniqueTag) js.push(`unique_tag: ${JSON.stringify(o.uniqueTag)}`);
  const lines = [`server_name: ${o.name ?? "pop"}`, `listen: ${host}:${at.port}`, `jetstream { ${js.join(", ")} }`];
  if (o.tags?.length) lines.push(`server_tags: [${o.tags.map((t) => JSON.stringify(t)).join(", ")}]`);
  if (o.cluster) lines.push(clusterConfig(o.cluster, `${host}:${at.clusterPort ?? o.cluster.port ?? -1}`));
  if (o.leafnodes) lines.push(leafnodeConfig(o.leafnodes, host));
  const included = (o.include ?? []).map((file) => `  include ${JSON.stringify(relative(at.confDir ?? at.dir, resolve(file)))}`);
  if (included.length) lines.push("accounts {", ...included, "}");
  if (o.extraConfig) lines.push(o.extraConfig);
  return lines.join("\n") + "\n";
}

/** The `cluster { ... }` block of a server config, listening at `listen` (host:port). */
export function clusterConfig(o: ClusterOptions, listen: string): string {
  const parts = [`name: ${o.name}`, `listen: ${listen}`];
  if (o.noAdvertise) parts.push("no_advertise: true");
  if (o.authorization) parts.push(`authorization { user: ${JSON.stringify(o.authorization.user)}, password: ${JSON.stringify(o.authorization.password)} }`);
  parts.push(`routes: [${o.routes.map((r) => JSON.stringify(r)).join(", ")}]`);
  return `cluster { ${parts.join(", ")} }`;
}

/** A server's leafnode section. */
export interface LeafnodeOptions {
  /**
   * Accept sites' leafnode connections on this port, each site logging in as one of `users`.
   * `advertise` (host:port) is the address the hub tells its sites to reconnect to: without it
   * the hub hands out its listen address, which a site behind NAT or a proxy then dials
   * directly after a link outage (nats-server 2.9 does so even with no_advertise).
   */
  listen?: { port: number; users: { user: string; password: string; account?: string }[]; advertise?: string };
  /** Connect out to these hub URLs (`nats-leaf://user:password@host:port`). */
  remotes?: string[];
  /**
   * The local account the remotes link (an experiment's, deploy/ops/account.ts); a hub's link
   * user names the hub's side in `users[].account`. Unset: the global account.
   */
  remoteAccount?: string;
}

/** The `leafnodes { ... }` block of a server config. */
export function leafnodeConfig(o: LeafnodeOptions, host = "127.0.0.1"): string {
  const parts: string[] = [];
  if (o.listen) {
    const users = o.listen.users
      .map((u) => `{ user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)}${u.account ? `, account: ${JSON.stringify(u.account)}` : ""} }`)
      .join(", ");
    parts.push(`listen: ${host}:${o.listen.port}`);
    if (o.listen.advertise) parts.push(`advertise: ${JSON.stringify(o.listen.advertise)}`);
    parts.push(`authorization { users = [ ${users} ] }`);
  }
  const account = o.remoteAccount ? `, account: ${JSON.stringify(o.remoteAccount)}` : "";
  if (o.remotes?.length) parts.push(`remotes = [ ${o.remotes.map((u) => `{ url: ${JSON.stringify(u)}${account} }`).join(", ")} ]`);
  return `leafnodes { ${parts.join(", ")} }`;
}

const GUARD = fileURLToPath(new URL("./guard.mjs", import.meta.url));

interface PortsFile {
  nats?: string[];
  cluster?: string[];
}

/** One running nats-server process. */
export class NatsServer {
  readonly dir: string;
  readonly options: NatsServerOptions;
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private guard?: ChildProcess;
  /** Client URL, e.g. nats://127.0.0.1:41234 */
  url = "";
  port = 0;
  /** Cluster route URL, when clustered. */
  clusterUrl = "";
  clusterPort = 0;
  private readonly ownsDir: boolean;

  private constructor(options: NatsServerOptions) {
    this.options = { ...options };
    this.ownsDir = !options.dir;
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), "pop-nats-"));
    mkdirSync(this.dir, { recursive: true });
  }

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options);
    await server.launch();
    return server;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private config(): string {
    return serverConfig(this.options, {
      dir: this.dir,
      port: this.port || (this.options.port ?? -1),
      clusterPort: this.clusterPort || (this.options.cluster?.port ?? -1),
    });
  }

  private async launch(): Promise<void> {
    const bin = findNatsServer();
    const portsDir = join(this.dir, "ports");
    rmSync(portsDir, { recursive: true, force: true });
    mkdirSync(portsDir, { recursive: true });
    let conf = this.options.configFile;
    if (!conf) {
      conf = join(this.dir, "server.conf");
      writeFileSync(conf, this.config());
    }
    const logFd = openSync(join(this.dir, "server.log"), "a");
    const tied = this.options.tiedToThisProcess ?? false;
    const child = spawn(bin, ["-c", conf, "--ports_file_dir", portsDir], { stdio: ["ignore", logFd, logFd], detached: tied });
    closeSync(logFd);
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    if (tied && child.pid !== undefined) {
      // In this process's group (a group-wide kill ends it too); unref'd: it never keeps this process up.
      this.guard = spawn(process.execPath, [GUARD, String(child.pid), String(process.pid)], { stdio: "ignore" });
      this.guard.unref();
    }
    const ports = await this.waitForPorts(portsDir, child);
    this.url = ports.nats![0]!.replace("0.0.0.0", "127.0.0.1");
    this.port = Number(new URL(this.url).port);
    if (this.options.cluster) {
      this.clusterUrl = ports.cluster?.[0] ?? "";
      this.clusterPort = this.clusterUrl ? Number(new URL(this.clusterUrl).port) : 0;
    }
  }

  private async waitForPorts(portsDir: string, child: ChildProcess): Promise<PortsFile> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new NatsServerError(`nats-server exited with code ${child.exitCode}; see ${join(this.dir, "server.log")}:\n${this.logTail()}`);
      }
      const file = readdirSync(portsDir).find((f) => f.endsWith(".ports"));
      if (file) {
        try {
          const ports = JSON.parse(readFileSync(join(portsDir, file), "utf8")) as PortsFile;
          if (ports.nats?.length && (!this.options.cluster || ports.cluster?.length)) return ports;
        } catch {
          // written but not complete yet
        }
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new NatsServerError(`nats-server did not report its ports within 15 s; see ${join(this.dir, "server.log")}`, { retryable: true });
  }

  /** The last lines of the server's log, for error messages. */
  logTail(lines = 20): string {
    try {
      return readFileSync(join(this.dir, "server.log"), "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  /** Stops the server: SIGTERM (graceful, default) or SIGKILL (a crash). Keeps its data. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
    this.guard?.kill();
    this.guard = undefined;
  }

  /** Simulates a crash. */
  kill(): Promise<void> {
    return this.stop("SIGKILL");
  }

  /** Starts the server again on the same ports with the same data. */
  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.launch();
  }

  /** Stops the server and removes its directory (if it made it). */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.options.cleanup ?? this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A JetStream cluster of nats-server processes on loopback. */
export class NatsCluster {
  private constructor(
    readonly nodes: NatsServer[],
    readonly dir: string,
  ) {}

  /**
   * Starts `size` nodes routed to each other. JetStream clustering needs its routes configured
   * at start, so the cluster ports are reserved up front (client ports are still the server's pick).
   */
  static async start(size = 3, options: { dir?: string; name?: string } = {}): Promise<NatsCluster> {
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), "pop-cluster-"));
    const name = options.name ?? "popc";
    const ports = await freePorts(size);
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p}`);
    const nodes: NatsServer[] = [];
    try {
      for (let i = 0; i < size; i++) {
        nodes.push(await NatsServer.start({ dir: join(dir, `n${i + 1}`), name: `n${i + 1}`, cluster: { name, port: ports[i]!, routes }, cleanup: false }));
      }
    } catch (error) {
      await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
      throw error;
    }
    return new NatsCluster(nodes, dir);
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Ports that were free a moment ago (bound to 0 and released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const srv = createServer();
          srv.once("error", reject);
          srv.listen(0, "127.0.0.1", () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
