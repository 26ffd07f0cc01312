/** `pop site`: nats-server configs for a multi-site experiment (a hub and sites joined by leafnodes). */
import { UsageError, type Flags } from "../args.ts";
import { CredsSetupError, credsAccount } from "../../ops/creds.ts";
import { HUB_DOMAIN, SiteLayoutError, writeSiteConfigs } from "../../ops/sites.ts";

export const siteHelp = `pop site --sites A,B --hub-host HOST --out DIR [options]

Writes one nats-server config per server of a multi-site experiment: DIR/hub.conf for the hub,
where the experiment's streams live (JetStream domain "${HUB_DOMAIN}"), and DIR/site-<name>.conf
for each site, whose server joins the hub by a leafnode and has a JetStream domain of its own.
Each site's processes talk only to their site's server and pass --js-domain ${HUB_DOMAIN}. With
--creds (the directory of pop creds ... --js-domain ${HUB_DOMAIN}) every server requires those
credentials, and the leafnode links carry the experiment's account (pop creds makes one per
experiment). Start each server with nats-server -c <file> on its own host.

  --sites A,B          site names (also their JetStream domains)            required
  --hub-host HOST      the address sites reach the hub at                   required
  --out DIR            where to write the configs and data directories      required
  --hub-port N         the hub's client port                                default: 4222
  --leaf-port N        the hub's leafnode port (open it to the sites)       default: 7422
  --site-port N        the first site's client port (the next site +1 ...)  default: 4222
  --creds DIR          include DIR/auth.conf (pop creds: the experiment's account) in every config

A site keeps running while its link to the hub is down: its processes retry, and what the hub
could not deliver meanwhile is delivered, or caught up by the peers, once the link is back.`;

export async function runSite(flags: Flags): Promise<void> {
  const sites = flags
    .string("sites")
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const hubHost = flags.string("hub-host");
  const out = flags.string("out");
  const hubPort = flags.int("hub-port", { min: 1, max: 65535 }) ?? 4222;
  const leafPort = flags.int("leaf-port", { min: 1, max: 65535 }) ?? 7422;
  const sitePortBase = flags.int("site-port", { min: 1, max: 65535 }) ?? 4222;
  const creds = flags.string("creds");
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
