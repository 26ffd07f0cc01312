/**
 * The standard NATS connection options every `pop` command takes: server URLs, credentials
 * (a .creds file, an nkey seed file, or user and password) and TLS files. Read once here from
 * flags, the URL and the environment, and turned into nats.js connect options here.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { credsAuthenticator, nkeyAuthenticator, nkeys, type ConnectionOptions } from "@nats-io/transport-node";
import { PopError, natsSubjects } from "../../protocol/mod.ts";

/** How a process proves who it is to the server, and how it checks the server. */
export interface NatsAuth {
  /** A NATS .creds file (user JWT and nkey seed), as an operator-mode server issues them. */
  creds?: string;
  /** A file holding one nkey seed (`SU...`), as `pop creds` writes them. */
  nkey?: string;
  user?: string;
  password?: string;
  /** PEM files: the CA that signed the server's certificate, and this client's certificate and key. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** Where to connect and as whom. */
export interface NatsTarget {
  /** Comma-separated server URLs, without any `user:pass@` (that moved into `auth`). */
  servers: string;
  auth: NatsAuth;
  /**
   * The JetStream domain the experiment's streams live in, when it is not the connected server's
   * own: a site's server joined to the hub by a leafnode (`pop site`) reaches the hub's with "hub".
   */
  jsDomain?: string;
}

/** The shared block of every connecting command's `--help`. */
export const NATS_OPTIONS_HELP = `Connection (each option may also come from the environment variable named):
  --server URL         NATS server(s), comma-separated, tried in that order (this site's
                       node first)  default: $NATS_URL or nats://127.0.0.1:4222
                       (nats://user:password@host also works)
  --nkey FILE          this identity's nkey seed file, as pop creds writes them   or $NATS_NKEY
  --creds FILE         a NATS .creds file (user JWT + nkey seed)                  or $NATS_CREDS
  --user U             user name ...                                              or $NATS_USER
  --password P         ... and password                                           or $NATS_PASSWORD
  --tls-ca FILE        CA certificate that signed the server's (PEM)              or $NATS_TLS_CA
  --tls-cert FILE      client certificate (PEM), with --tls-key                   or $NATS_TLS_CERT
  --tls-key FILE       client key (PEM)                                           or $NATS_TLS_KEY
  --js-domain D        the JetStream domain holding the experiment, from a site   or $NATS_JS_DOMAIN
                       joined to a hub by a leafnode (pop site): "hub"`;

/** A credentials or TLS file cannot be read or does not hold what it should. Fix the file and retry. */
export class CredentialsFileError extends PopError {}

/** The connection options are contradictory (two kinds of credentials, a password without a user). */
export class ConnectionOptionsError extends PopError {}

/**
 * Moves `user:pass@` out of the server URLs into `auth` (nats.js ignores it in URLs). Every URL
 * that carries credentials must carry the same ones.
 */
export function splitServerCredentials(servers: string): { servers: string; user?: string; password?: string } {
  let user: string | undefined;
  let password: string | undefined;
  const clean = servers.split(",").map((s) => {
    const raw = s.trim();
    const at = raw.lastIndexOf("@");
    if (at < 0) return raw;
    const scheme = raw.indexOf("://");
    const userInfo = raw.slice(scheme >= 0 ? scheme + 3 : 0, at);
    const colon = userInfo.indexOf(":");
    const u = decodeURIComponent(colon >= 0 ? userInfo.slice(0, colon) : userInfo);
    const p = colon >= 0 ? decodeURIComponent(userInfo.slice(colon + 1)) : undefined;
    if ((user !== undefined && user !== u) || (password !== undefined && password !== p)) {
      throw new ConnectionOptionsError(`the server URLs carry different credentials; give them once with --user/--password`);
    }
    user = u;
    password = p;
    return `${scheme >= 0 ? raw.slice(0, scheme + 3) : ""}${raw.slice(at + 1)}`;
  });
  return { servers: clean.join(","), user, password };
}

/**
 * The target from already-read flag values, the URL and the environment. Credentials given as
 * flags or in the URL replace all credentials of the environment (a shell's NATS_USER must not
 * clash with a process started with --nkey); TLS files are taken one by one. Throws
 * {@link ConnectionOptionsError} on contradictions.
 */
export function natsTarget(servers: string, flags: NatsAuth & { jsDomain?: string }, env: NodeJS.ProcessEnv = process.env): NatsTarget {
  const fromUrl = splitServerCredentials(servers);
  const given = flags.creds ?? flags.nkey ?? flags.user ?? flags.password ?? fromUrl.user;
  const e = given === undefined ? env : {};
  const auth: NatsAuth = {
    creds: flags.creds ?? e.NATS_CREDS,
    nkey: flags.nkey ?? e.NATS_NKEY,
    user: flags.user ?? fromUrl.user ?? e.NATS_USER,
    password: flags.password ?? fromUrl.password ?? e.NATS_PASSWORD,
    tlsCa: flags.tlsCa ?? env.NATS_TLS_CA,
    tlsCert: flags.tlsCert ?? env.NATS_TLS_CERT,
    tlsKey: flags.tlsKey ?? env.NATS_TLS_KEY,
  };
  const jsDomain = flags.jsDomain ?? env.NATS_JS_DOMAIN;
  if (jsDomain !== undefined && !/^[A-Za-z0-9_-]+$/.test(jsDomain))
    throw new ConnectionOptionsError(`--js-domain '${jsDomain}' is not a domain name (letters, digits, '-' and '_')`);
  for (const k of Object.keys(auth) as (keyof NatsAuth)[]) if (!auth[k]) delete auth[k];
  const kinds = [auth.creds && "--creds", auth.nkey && "--nkey", auth.user && "--user"].filter(Boolean);
  // Several authenticators would be offered at once and the server would pick one silently.
  if (kinds.length > 1)
    throw new ConnectionOptionsError(`give one kind of credentials, not ${kinds.join(" and ")} (check NATS_CREDS, NATS_NKEY, NATS_USER too)`);
  if (auth.password !== undefined && auth.user === undefined) throw new ConnectionOptionsError("--password needs --user");
  if (Boolean(auth.tlsCert) !== Boolean(auth.tlsKey)) throw new ConnectionOptionsError("--tls-cert and --tls-key go together");
  return { servers: fromUrl.servers, auth, ...(jsDomain ? { jsDomain } : {}) };
}

function readFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new CredentialsFileError(`cannot read the ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

const USER_SEED = /\bSU[A-Z2-7]{56}\b/;

/** The seed in an nkey file: the first `SU...` (user seed) token, so comments around it are fine. */
export function readNkeySeed(path: string): Uint8Array {
  const text = new TextDecoder().decode(readFile(path, "nkey file"));
  const seed = USER_SEED.exec(text)?.[0];
  if (!seed) throw new CredentialsFileError(`${path} holds no nkey user seed (a line starting 'SU'); pop creds writes such files`);
  try {
    nkeys.fromSeed(new TextEncoder().encode(seed));
  } catch (error) {
    throw new CredentialsFileError(`${path}: the nkey seed is not valid (${(error as Error).message})`, { cause: error });
  }
  return new TextEncoder().encode(seed);
}

/** The public key (`U...`) of an nkey seed file, to name the identity in messages. */
export function nkeyPublicKey(path: string): string {
  return nkeys.fromSeed(readNkeySeed(path)).getPublicKey();
}

/** Says, for error messages, which credentials were offered (never the secret). */
export function describeAuth(auth: NatsAuth): string {
  if (auth.nkey) {
    let key = "";
    try {
      key = ` ${nkeyPublicKey(auth.nkey)}`;
    } catch {
      // unreadable: the message still names the file
    }
    return `nkey${key} from ${auth.nkey}`;
  }
  if (auth.creds) return `credentials file ${auth.creds}`;
  if (auth.user) return `user '${auth.user}'${auth.password === undefined ? " (no password)" : ""}`;
  return "no credentials";
}

/** nats.js connect options for a target; reads the files now, so a bad path fails before connecting. */
export function natsConnectionOptions(target: NatsTarget, name: string): ConnectionOptions {
  const { auth } = target;
  const options: ConnectionOptions = {
    servers: target.servers.split(","),
    name,
    // In the order given: a process at a site of a stretched cluster (deploy/ops/site-cluster.ts)
    // lists its own site's node first and the other sites' as fallbacks; it moves on when its
    // node dies and keeps trying the whole list for ever.
    noRandomize: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 5000,
    // nats.js otherwise builds an Error (with a stack trace) for every request, JetStream
    // publishes included, only to show the caller on a timeout: a quarter of an actor's CPU in
    // the plane benchmark. Our errors name the operation that timed out instead.
    noAsyncTraces: true,
  };
  if (auth.nkey) {
    const seed = readNkeySeed(auth.nkey);
    options.authenticator = nkeyAuthenticator(seed);
    options.inboxPrefix = inboxPrefixOf(seed);
  }
  if (auth.creds) {
    const creds = readFile(auth.creds, "credentials file");
    const text = new TextDecoder().decode(creds);
    // credsAuthenticator parses lazily, at the handshake; parse now to blame the file, not the server.
    const seed = USER_SEED.exec(text)?.[0];
    if (!/-----BEGIN NATS USER JWT-----[\s\S]+-----BEGIN USER NKEY SEED-----/.test(text) || !seed) {
      throw new CredentialsFileError(`${auth.creds} is not a NATS .creds file (it needs a USER JWT block and a USER NKEY SEED block)`);
    }
    options.authenticator = credsAuthenticator(creds);
    options.inboxPrefix = inboxPrefixOf(new TextEncoder().encode(seed));
  }
  if (auth.user) {
    options.user = auth.user;
    options.pass = auth.password;
  }
  if (auth.tlsCa || auth.tlsCert) {
    for (const [file, what] of [
      [auth.tlsCa, "TLS CA file"],
      [auth.tlsCert, "TLS certificate"],
      [auth.tlsKey, "TLS key"],
    ] as const) {
      if (file) readFile(file, what);
    }
    options.tls = {
      ...(auth.tlsCa ? { caFile: auth.tlsCa } : {}),
      ...(auth.tlsCert ? { certFile: auth.tlsCert, keyFile: auth.tlsKey } : {}),
    };
  }
  return options;
}

/**
 * The inbox prefix of the identity holding `seed`: its public key's private inbox
 * (natsSubjects.privateInbox), the only inbox `pop creds` lets that key subscribe to. nats.js
 * builds every inbox of the connection from it: request replies, JetStream API and publish-ack
 * replies, ordered and push consumers' deliveries, pull batches, KV watches and object reads.
 */
export function inboxPrefixOf(seed: Uint8Array): string {
  return natsSubjects.privateInbox(nkeys.fromSeed(seed).getPublicKey());
}

/**
 * The key this identity signs its message ids with (protocol/publish.ts): a hash of its secret
 * (the nkey seed, the .creds file, or user and password), so every process of one identity
 * computes the same ids and no other identity can. Undefined without credentials.
 */
export function messageIdSecret(auth: NatsAuth): Uint8Array | undefined {
  const h = createHash("sha256").update("pop message ids\0");
  if (auth.nkey) h.update(readNkeySeed(auth.nkey));
  else if (auth.creds) h.update(readFile(auth.creds, "credentials file"));
  else if (auth.user && auth.password !== undefined) h.update(`${auth.user}\0${auth.password}`);
  else return undefined;
  return new Uint8Array(h.digest());
}
