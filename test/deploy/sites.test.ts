import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeCreds } from "../../deploy/ops/creds.ts";
import { findNatsServer } from "../../deploy/ops/nats-server.ts";
import { inDomain, peerPermissions } from "../../deploy/ops/permissions.ts";
import { SiteLayoutError, writeSiteConfigs } from "../../deploy/ops/sites.ts";

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
});
