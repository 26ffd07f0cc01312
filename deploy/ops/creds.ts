/**
 * Per-identity credentials for one experiment: an nkey per peer, one for the coordinator and
 * optionally one read-only observer; the entry of a nats-server `accounts` block that puts the
 * experiment in an account of its own (deploy/ops/account.ts) and binds each key to its permissions
 * (deploy/ops/permissions.ts); and a README saying how to use them.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { NAME_PATTERN, PEER_EVENTS, PopError } from "../../protocol/mod.ts";
import { accountLimits, accountOf, formatBytes, renderJetStreamLimits, type AccountLimits } from "./account.ts";
import { readNkeySeed } from "./nats-options.ts";
import {
  coordinatorPermissions,
  inDomain,
  observerPermissions,
  peerPermissions,
  withPrivateInbox,
  type Role,
  type RolePermissions,
  type Rule,
} from "./permissions.ts";

/** Names the coordinator and observer keys take; no peer may be called so. */
export const COORDINATOR_IDENTITY = "coordinator";
export const OBSERVER_IDENTITY = "observer";

/** The identities asked for cannot be made (bad or clashing names). */
export class CredsSetupError extends PopError {}

export interface CredsOptions {
  experiment: string;
  peers: string[];
  /** Directory for the seed files, auth.conf and README.txt (created). */
  out: string;
  /** Also make a read-only observer key. */
  observer?: boolean;
  /** The processes reach JetStream through this domain (`--js-domain`, multi-site runs: "hub"). */
  jsDomain?: string;
  /** Bytes the experiment may store in all (its account's JetStream max_file; default DEFAULT_MAX_STORE). */
  maxStore?: number;
}

/** One identity's key. */
export interface Identity {
  name: string;
  role: Role;
  /** The public nkey (`U...`) the server knows it by. */
  publicKey: string;
  /** The seed file (mode 0600) the process passes with --nkey. */
  seedFile: string;
  /** False when an existing seed file was kept. */
  created: boolean;
  permissions: RolePermissions;
}

export interface CredsResult {
  dir: string;
  identities: Identity[];
  /** The experiment's NATS account (accountOf): leafnode links of a multi-site run bind to it. */
  account: string;
  limits: AccountLimits;
  /** The account entry to include inside a nats-server config's `accounts { ... }` block. */
  authConf: string;
  readme: string;
}

/** The seed file of an identity inside a creds directory. */
export function seedFileOf(dir: string, identity: string): string {
  return join(dir, `${identity}.nk`);
}

/**
 * Writes (or refreshes) an experiment's credentials. Existing seed files are kept, so running it
 * again with more peers adds their keys without changing anyone else's; auth.conf is rewritten
 * (reload the server to apply it).
 */
export function writeCreds(options: CredsOptions): CredsResult {
  const { experiment } = options;
  const peers = [...new Set(options.peers)];
  if (!NAME_PATTERN.test(experiment)) throw new CredsSetupError(`experiment '${experiment}' is not a valid name`);
  if (peers.length === 0) throw new CredsSetupError("name at least one peer");
  for (const p of peers) {
    if (!NAME_PATTERN.test(p)) throw new CredsSetupError(`peer '${p}' is not a valid name: use a-z, 0-9, '-' or '_'`);
    if (p === COORDINATOR_IDENTITY || p === OBSERVER_IDENTITY) throw new CredsSetupError(`a peer cannot be called '${p}': that is the ${p}'s key`);
  }
  const limits = accountLimits(peers.length, options.maxStore);
  const dir = resolve(options.out);
  mkdirSync(dir, { recursive: true });
  const wanted: { name: string; permissions: RolePermissions }[] = [
    { name: COORDINATOR_IDENTITY, permissions: coordinatorPermissions(experiment, peers) },
    ...peers.map((p) => ({ name: p, permissions: peerPermissions(experiment, p, peers) })),
    ...(options.observer ? [{ name: OBSERVER_IDENTITY, permissions: observerPermissions(experiment, peers) }] : []),
  ].map((w) => ({ ...w, permissions: inDomain(w.permissions, options.jsDomain) }));
  const identities = wanted.map(({ name, permissions }) => {
    const seedFile = seedFileOf(dir, name);
    const created = !existsSync(seedFile);
    if (created) {
      const kp = createUser();
      writeFileSync(seedFile, new TextDecoder().decode(kp.getSeed()) + "\n", { mode: 0o600 });
    }
    // writeFileSync's mode applies only to new files; a kept file may have been copied loosely.
    chmodSync(seedFile, 0o600);
    const publicKey = fromSeed(readNkeySeed(seedFile)).getPublicKey();
    return { name, role: permissions.role, publicKey, seedFile, created, permissions: withPrivateInbox(permissions, publicKey) };
  });
  const authConf = join(dir, "auth.conf");
  writeFileSync(authConf, renderAuthConf(experiment, identities, limits));
  const readme = join(dir, "README.txt");
  writeFileSync(readme, renderReadme(experiment, dir, identities, limits, options.jsDomain));
  return { dir, identities, account: accountOf(experiment), limits, authConf, readme };
}

/** The account an auth.conf written by `pop creds` in `dir` defines (for `pop site --creds`). */
export function credsAccount(dir: string): string {
  const file = join(dir, "auth.conf");
  const m = /^"([^"]+)": \{/m.exec(readFileSync(file, "utf8"));
  if (!m) throw new CredsSetupError(`${file} defines no account: write it again with this version of pop creds`);
  return m[1]!;
}

function list(name: string, rules: Rule[], indent: string): string[] {
  if (rules.length === 0) return [];
  return [
    `${indent}${name}: [`,
    // A run of subjects with the same reason gets the reason once.
    ...rules.flatMap((rule, i) => [...(rules[i - 1]?.why === rule.why ? [] : [`${indent}  # ${rule.why}`]), `${indent}  ${JSON.stringify(rule.subject)}`]),
    `${indent}]`,
  ];
}

/**
 * The experiment's entry of a nats-server `accounts` block: its account with its JetStream
 * limits, and in it one user per nkey, with its permissions and why each subject is there. An
 * entry rather than the block, so that several experiments' files can be included in one
 * server's `accounts { }` (a second top-level `accounts` would replace the first).
 */
export function renderAuthConf(experiment: string, identities: Identity[], limits: AccountLimits): string {
  const account = accountOf(experiment);
  const lines = [
    `# Panel-of-Peers: experiment '${experiment}' as a NATS account of its own, and who may publish`,
    "# and subscribe to what in it. Written by 'pop creds'. Include it INSIDE the server config's",
    "# accounts block (include paths are relative to that file), beside other experiments' files:",
    "#   accounts {",
    '#     include "auth.conf"',
    "#   }",
    "# Other experiments' keys cannot reach this account's streams, buckets, objects, consumers or",
    "# inboxes. Entries marked BROAD match more than the identity's own data; the comment says why",
    "# nothing narrower works with nats.js v3 and nats-server 2.9.",
    `${JSON.stringify(account)}: {`,
    `  # What the experiment may store in all (${formatBytes(limits.maxStore)}; pop creds --max-store). Not set aside`,
    "  # on disk, but nats-server refuses to start JetStream when its accounts' max_file add up to",
    "  # more than its storage (75% of free disk unless jetstream { max_file } says).",
    `  ${renderJetStreamLimits(limits)}`,
    "  users = [",
  ];
  for (const id of identities) {
    const p = id.permissions;
    lines.push(
      `    # ${id.role} '${id.name}' (${id.name}.nk)`,
      "    {",
      `      nkey: ${JSON.stringify(id.publicKey)}`,
      "      permissions: {",
      "        publish: {",
      ...list("allow", p.publish.allow, "          "),
      ...list("deny", p.publish.deny, "          "),
      "        }",
      "        subscribe: {",
      ...list("allow", p.subscribe.allow, "          "),
      ...list("deny", p.subscribe.deny, "          "),
      "        }",
      "      }",
      "    }",
    );
  }
  lines.push("  ]", "}");
  return lines.join("\n") + "\n";
}

function renderReadme(experiment: string, dir: string, identities: Identity[], limits: AccountLimits, jsDomain?: string): string {
  const d = jsDomain ? ` --js-domain ${jsDomain}` : "";
  const peers = identities.filter((i) => i.role === "peer");
  const observer = identities.find((i) => i.role === "observer");
  const title = `Credentials of the Panel-of-Peers experiment '${experiment}'`;
  return `${title}
${"=".repeat(title.length)}

Each <identity>.nk file holds one nkey seed: a secret. Give each process only its own file.
auth.conf puts the experiment in a NATS account of its own, ${accountOf(experiment)}, and lists the
public keys and what each identity may publish and subscribe to; it holds no secrets.

1. Start nats-server with JetStream and the experiment's account. Put a server.conf next to
   auth.conf (or anywhere, with the include path relative to server.conf):

     listen: 0.0.0.0:4222
     jetstream { store_dir: "/var/lib/nats" }
     accounts {
       include "auth.conf"
     }

   auth.conf is an entry of the accounts block, so it goes inside it; other experiments'
   auth.conf files may be included beside it (each is an account of its own).

   and run:  nats-server -js -c server.conf
   Check the config first with:  nats-server -t -c server.conf

2. Every pop command passes its key with --nkey (or the environment variable NATS_NKEY):

     pop pool --from prompts.jsonl --name my-pool --nkey ${seedFileOf(dir, COORDINATOR_IDENTITY)}${d}
     pop coordinator --experiment ${experiment} --config experiment.json --nkey ${seedFileOf(dir, COORDINATOR_IDENTITY)}${d}
${peers.map((p) => `     pop actor --experiment ${experiment} --peer ${p.name} --nkey ${p.seedFile}${d}`).join("\n")}
${observer ? `     pop watch --experiment ${experiment} --nkey ${observer.seedFile}${d}\n     pop report --experiment ${experiment} --nkey ${observer.seedFile}${d}\n` : ""}${jsDomain ? `   These keys are for processes that reach the experiment through JetStream domain '${jsDomain}'\n   (a multi-site run, pop site): each passes --js-domain ${jsDomain} and its site's --server.\n` : ""}
   The coordinator's key sets a server up (streams, the prompt pool, the experiment config), so
   run pop pool and the first coordinator with it. Peers cannot create streams: start the
   coordinator (or pop pool) before the peers on a fresh server.

3. Adding a peer: run pop creds again with the longer --peers list (existing keys are kept),
   then make the server re-read its config:  nats-server --signal reload  (or kill -HUP <pid>).
   Until then the server refuses the new peer's key, and the coordinator's and observer's deny
   lists do not yet name the new peer's durable consumers.

What each role may do (auth.conf has the full lists, with the reason for every subject):
  peer         publishes only its own candidates, verdicts, evaluations and control events
               (${PEER_EVENTS.join(", ")}), dead letters, its
               membership records, its model record and weight objects; uses its own durable
               consumers. It cannot publish prompts, pairs, the coordinator's events or anything
               on another peer's subjects.
  coordinator  publishes prompts, pairs, iteration_opened/closed, experiment_done, peer_left
               for lapsed members, the state bucket's config/progress/iteration keys; creates
               the streams; reads everything of the experiment.
  observer     reads the experiment's streams, state and objects; publishes nothing.

Each identity may subscribe only to its own inbox (_INBOX.<its public key>.>), which pop commands
connect with. Durable consumers are denied to everyone but their owner by name. Other
experiments on the same server are out of reach altogether: their streams, buckets, objects,
consumers and inboxes are in their own accounts, which these keys cannot see.

Storage: the experiment may store ${formatBytes(limits.maxStore)} in all (its account's max_file; change it
with pop creds --max-store, then reload the server); beyond it the server refuses writes
("resource limits exceeded for account"). It is not set aside on disk, but nats-server refuses
to start JetStream when its accounts' limits add up to more than its storage (75% of the free
disk unless its jetstream block sets max_file): size --max-store to the server's disk.

Objects: the pool and images are written by the coordinator's key only; each peer writes its
weights into its own bucket (pop_w_<experiment>_P_<peer>, created by the coordinator with the
peer's share). Every load is checked against a digest its owner recorded (weights: the model
record; the pool: the experiment config; images: their name).
`;
}
