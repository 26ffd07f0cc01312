import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeCreds } from "../../deploy/ops/creds.ts";
import { findNatsServer } from "../../deploy/ops/nats-server.ts";
import { inDomain, peerPermissions } from "../../deploy/ops/permissions.ts";
import { SiteLayoutError, writeSiteConfigs } from "../../deploy/ops/sites.ts";
import { clientServers, writeClusterConfigs, type ClusterSite } from "../../deploy/ops/site-cluster.ts";
import { clusterSites, runSite, siteHelp } from "../../deploy/cli/commands/site.ts";
import { Flags, UsageError } from "../../deploy/cli/args.ts";
import { existsSync } from "node:fs";
import { defaultReplicas } from "../../protocol/mod.ts";
import type { NatsConnection } from "@nats-io/transport-node";

describe("pop site", () => {
  const dir = mkdtempSync(join(tmpdir(), "pop-site-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes a hub and site configs that nats-server accepts, credentials included", () => {
    const creds = writeCreds({ experiment: "x", peers: ["a", "b"], out: join(dir, "creds"), jsDomain: "hub" });
    const files = writeSiteConfigs({
      sites: ["lab1", "lab2"],
      out: dir,
      hubHost: "10.0.0.5",
      hubPort: 4222,
      leafPort: 7422,
      sitePortBase: 5222,
      include: [creds.authConf],
      account: creds.account,
    });
    for (const file of [files.hub, ...files.sites.map((s) => s.config)]) {
      const check = spawnSync(findNatsServer(), ["-c", file, "-t"], { encoding: "utf8" });
      expect(check.status, `${file}: ${check.stderr}${check.stdout}`).toBe(0);
    }
    const hub = readFileSync(files.hub, "utf8");
    const lab2 = readFileSync(files.sites[1]!.config, "utf8");
    expect(hub).toContain("domain: hub");
    expect(hub).toContain('advertise: "10.0.0.5:7422"');
    expect(lab2).toContain("domain: lab2");
    expect(lab2).toContain("listen: 0.0.0.0:5223");
    // The site dials the hub as its own link user, whose password the hub knows.
    const url = /url: "nats-leaf:\/\/(leaf-lab2):([^@]+)@10\.0\.0\.5:7422"/.exec(lab2);
    expect(url).not.toBeNull();
    // The link carries the experiment's account only, at both ends.
    expect(hub).toContain(`{ user: "leaf-lab2", password: "${url![2]}", account: "POP_x" }`);
    expect(lab2).toMatch(/url: "nats-leaf:[^"]+", account: "POP_x" \}/);
    expect(hub).toMatch(/accounts \{\n  include "[^"]*auth\.conf"\n\}/);
  });

  it("refuses names that cannot be domains or clash", () => {
    const opts = { out: dir, hubHost: "h", hubPort: 1, leafPort: 2, sitePortBase: 3 };
    expect(() => writeSiteConfigs({ ...opts, sites: ["hub"] })).toThrow(SiteLayoutError);
    expect(() => writeSiteConfigs({ ...opts, sites: ["a", "a"] })).toThrow(SiteLayoutError);
    expect(() => writeSiteConfigs({ ...opts, sites: ["A.b"] })).toThrow(SiteLayoutError);
  });

  it("permissions through a domain keep the plain API subjects (the hub maps back to them) and add the domain's", () => {
    const plain = peerPermissions("x", "a").publish.allow.map((r) => r.subject);
    const viaHub = inDomain(peerPermissions("x", "a"), "hub").publish.allow.map((r) => r.subject);
    expect(viaHub).toEqual(expect.arrayContaining(plain));
    expect(viaHub).toContain("$JS.hub.API.INFO");
    expect(viaHub).toContain("$JS.hub.API.$KV.pop_members.x.a.*");
    expect(viaHub.filter((s) => s.startsWith("pop."))).toEqual(plain.filter((s) => s.startsWith("pop.")));
  });

  describe("--layout cluster", () => {
    const SITES: ClusterSite[] = [
      { name: "lab1", host: "10.0.0.1", clientPort: 4222, routePort: 6222 },
      { name: "lab2", host: "10.0.0.2", clientPort: 4222, routePort: 6222 },
      { name: "lab3", host: "lab3.example.org", clientPort: 4300, routePort: 6300 },
    ];

    it("writes one node per site that nats-server accepts: tagged by site, one replica per site, authenticated routes, credentials", () => {
      const creds = writeCreds({ experiment: "x", peers: ["a", "b"], out: join(dir, "ccreds") });
      const files = writeClusterConfigs({ sites: SITES, out: join(dir, "cluster"), include: [creds.authConf] });
      expect(files.sites.map((s) => s.site)).toEqual(["lab1", "lab2", "lab3"]);
      for (const s of files.sites) {
        const check = spawnSync(findNatsServer(), ["-c", s.config, "-t"], { encoding: "utf8" });
        expect(check.status, `${s.config}: ${check.stderr}${check.stdout}`).toBe(0);
      }
      const lab2 = readFileSync(files.sites[1]!.config, "utf8");
      expect(lab2).toContain("server_name: pop-lab2");
      expect(lab2).toContain('server_tags: ["site:lab2"]');
      expect(lab2).toMatch(/jetstream \{[^}]*unique_tag: "site:"/);
      expect(lab2).toContain("listen: 0.0.0.0:4222");
      expect(lab2).toContain("no_advertise: true");
      expect(lab2).toContain('include "../ccreds/auth.conf"');
      // Routes log in as the route user with the password every node's cluster block requires.
      const auth = /cluster \{ name: pop, listen: 0\.0\.0\.0:6222, no_advertise: true, authorization \{ user: "pop-route", password: "([^"]+)" \}/.exec(lab2);
      expect(auth).not.toBeNull();
      const routes = [...lab2.matchAll(/nats-route:\/\/pop-route:([^@]+)@([^"]+)"/g)].map((m) => [m[1], m[2]]);
      expect(routes).toEqual([
        [auth![1], "10.0.0.1:6222"],
        [auth![1], "lab3.example.org:6300"],
      ]);
      expect(readFileSync(files.sites[0]!.config, "utf8")).toContain(`password: "${auth![1]}"`);
      // Each site's processes: own node first, the others as fallbacks; its README says so and what to open.
      expect(files.sites[2]!.servers).toEqual(["nats://lab3.example.org:4300", "nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]);
      const readme = readFileSync(files.sites[2]!.readme, "utf8");
      expect(readme).toContain("route port 6300/tcp, inbound from 10.0.0.1 (lab1), 10.0.0.2 (lab2)");
      expect(readme).toContain("--server nats://lab3.example.org:4300,nats://10.0.0.1:4222,nats://10.0.0.2:4222 --nkey creds/<identity>.nk");
      expect(readme).toContain("nats-server -c node-lab3.conf");
    });

    it("needs three sites with usable hosts", () => {
      const out = join(dir, "bad");
      expect(() => writeClusterConfigs({ sites: SITES.slice(0, 2), out })).toThrow(/at least 3 sites/);
      expect(() => writeClusterConfigs({ sites: [...SITES.slice(0, 2), { ...SITES[2]!, host: "" }], out })).toThrow(SiteLayoutError);
      expect(() => writeClusterConfigs({ sites: [...SITES.slice(0, 2), { ...SITES[2]!, name: "lab1" }], out })).toThrow(SiteLayoutError);
      expect(() => clientServers(SITES, "nowhere")).toThrow(SiteLayoutError);
    });

    it("gives sites that share a host the next ports, and refuses hosts of unknown sites", () => {
      const hosts = new Map([
        ["a", "127.0.0.1"],
        ["b", "127.0.0.1"],
        ["c", "10.1.1.1"],
      ]);
      expect(clusterSites(["a", "b", "c"], hosts, 4222, 6222)).toEqual([
        { name: "a", host: "127.0.0.1", clientPort: 4222, routePort: 6222 },
        { name: "b", host: "127.0.0.1", clientPort: 4223, routePort: 6223 },
        { name: "c", host: "10.1.1.1", clientPort: 4222, routePort: 6222 },
      ]);
      expect(() => clusterSites(["a", "b"], hosts, 4222, 6222)).toThrow(/not in --sites/);
      expect(() => clusterSites(["a", "b", "c", "d"], hosts, 4222, 6222)).toThrow(/no host for site 'd'/);
    });

    it("pop site --layout cluster writes every site's files; the hub's options are refused with it", async () => {
      const out = join(dir, "cli");
      const args = ["--layout", "cluster", "--sites", "a,b,c", "--hosts", "a=127.0.0.1,b=127.0.0.1,c=127.0.0.1", "--out", out];
      const write = process.stdout.write;
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        await runSite(new Flags(args, siteHelp));
      } finally {
        process.stdout.write = write;
      }
      for (const site of ["a", "b", "c"]) expect(existsSync(join(out, `node-${site}.conf`)) && existsSync(join(out, `README-${site}.txt`))).toBe(true);
      expect(readFileSync(join(out, "node-c.conf"), "utf8")).toContain("listen: 0.0.0.0:4224");
      await expect(runSite(new Flags([...args, "--hub-host", "h"], siteHelp))).rejects.toThrow(UsageError);
      await expect(runSite(new Flags(["--layout", "ring", "--sites", "a,b,c", "--out", out], siteHelp))).rejects.toThrow(/--layout must be hub or cluster/);
    });

    it("makes new streams R3 on a cluster and R1 on a lone server, unless told", () => {
      expect(defaultReplicas({ info: { cluster: "pop" } } as unknown as NatsConnection)).toBe(3);
      expect(defaultReplicas({ info: {} } as unknown as NatsConnection)).toBe(1);
    });
  });
});
