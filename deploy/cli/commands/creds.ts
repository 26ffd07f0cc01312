/** `pop creds`: nkeys and a nats-server accounts block that bind each identity to its subjects, in an account per experiment. */
import { UsageError, type Flags } from "../args.ts";
import { DEFAULT_MAX_STORE, MIN_MAX_STORE, SizeFormatError, formatBytes, parseBytes } from "../../ops/account.ts";
import { CredsSetupError, writeCreds } from "../../ops/creds.ts";

export const credsHelp = `pop creds --experiment NAME --peers A,B,C --out DIR [--observer] [--js-domain hub] [--max-store SIZE]

Makes one nkey per peer, one for the coordinator and (with --observer) one read-only observer,
and a nats-server accounts block that lets each key speak only as itself: a peer publishes
only its own candidates, verdicts, evaluations and events; only the coordinator publishes
prompts and pairs. Writes DIR/<identity>.nk (the secret seeds, mode 0600), DIR/auth.conf (to
include inside the server config's accounts { } block) and DIR/README.txt (how to start the server and the processes).
The experiment is a NATS account of its own (POP_<experiment>): other experiments' keys on the
same server cannot reach its streams, objects, consumers or inboxes, and the account's limit
bounds what its members can store in all. Running it again keeps existing keys, adds new ones
and rewrites auth.conf.

  --experiment NAME    experiment the permissions are for                   required
  --peers A,B,C        the panel's peer names                               required
  --out DIR            where to write the keys and config                   required
  --observer           also make observer.nk, for pop watch, report and revote
  --js-domain D        the processes reach JetStream through domain D (multi-site runs with
                       pop site: "hub"); they then pass --js-domain D too
  --max-store SIZE     bytes the experiment may store in all, e.g. 50GB      default: ${formatBytes(DEFAULT_MAX_STORE)}
                       (at least ${formatBytes(MIN_MAX_STORE)}; below ~2 GiB lower the experiment config's
                       stateBytes/membersBytes limits too). The server refuses to start JetStream when its
                       accounts' limits add up to more than its storage (75% of free disk).`;

export async function runCreds(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment");
  const peers = flags
    .string("peers")
    ?.split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const out = flags.string("out");
  const observer = flags.bool("observer");
  const jsDomain = flags.string("js-domain");
  const maxStoreText = flags.string("max-store");
  flags.rejectUnknown();
  if (!experiment) throw new UsageError("--experiment is required", credsHelp);
  if (!peers?.length) throw new UsageError("--peers is required", credsHelp);
  if (!out) throw new UsageError("--out is required", credsHelp);
  let result;
  try {
    const maxStore = maxStoreText === undefined ? undefined : parseBytes(maxStoreText);
    result = writeCreds({ experiment, peers, out, observer, jsDomain, maxStore });
  } catch (error) {
    if (error instanceof CredsSetupError || error instanceof SizeFormatError) throw new UsageError(error.message, credsHelp);
    throw error;
  }
  for (const id of result.identities) {
    process.stdout.write(`${id.role.padEnd(12)} ${id.name.padEnd(16)} ${id.publicKey}  ${id.seedFile}${id.created ? "" : "  (kept)"}\n`);
  }
  process.stdout.write(`account ${result.account}, storing at most ${formatBytes(result.limits.maxStore)}\n`);
  process.stdout.write(`wrote ${result.authConf} and ${result.readme}\n`);
  process.stdout.write(`start the server with a config that has: accounts { include "${result.authConf}" } (relative to that config); see README.txt\n`);
}
