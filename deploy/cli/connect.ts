/** Connecting the command-line tools to NATS, with errors that say what to do. */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { PopError, setJetStreamDomain, setMessageIdKey } from "../../protocol/mod.ts";
import { openServerWarning } from "./open-server.ts";
import { describeAuth, messageIdSecret, natsConnectionOptions, natsTarget, type NatsTarget } from "../ops/nats-options.ts";

export const DEFAULT_SERVER = process.env.NATS_URL ?? "nats://127.0.0.1:4222";

/** The NATS server could not be reached. Retrying helps once it is up. */
export class ServerUnreachableError extends PopError {
  constructor(servers: string, cause: unknown) {
    super(
      `cannot reach NATS at ${servers}: ${(cause as Error)?.message ?? cause}. Is nats-server running with JetStream (nats-server -js)? Pass --server URL or set NATS_URL.`,
      { cause, retryable: true },
    );
  }
}

/**
 * The server refused the credentials (nats.js `AuthorizationError`, the server's "Authorization
 * Violation"). Not retryable: the same credentials will be refused again.
 */
export class AuthenticationRefusedError extends PopError {
  constructor(servers: string, offered: string, cause: unknown) {
    super(
      `NATS at ${servers} refused the credentials (${offered}): ${(cause as Error)?.message ?? cause}. Pass the identity's key with --nkey FILE (pop creds writes them), --creds FILE or --user/--password, and check the server's authorization config lists it.`,
      { cause, retryable: false },
    );
  }
}

/** nats.js names its errors; the auth refusal may also arrive as the cause of a connection error. */
function isAuthRefusal(error: unknown): boolean {
  for (let e = error as { name?: string; message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.name === "AuthorizationError" || e.name === "UserAuthenticationExpiredError" || /authorization violation/i.test(e.message ?? "")) return true;
  }
  return false;
}

/**
 * Connects to `target` (URLs, or URLs with credentials from {@link Flags.nats}). Logs
 * disconnects, and every permissions violation the server reports with its subject: those are
 * asynchronous (-ERR), so a refused publish or subscription is otherwise easy to miss.
 */
export async function connectNats(target: string | NatsTarget, name: string, log?: Logger): Promise<NatsConnection> {
  // A bare URL string is taken as it is (credentials in it still count), without the environment's.
  const t: NatsTarget = typeof target === "string" ? natsTarget(target, {}, {}) : target;
  const options = natsConnectionOptions(t, name);
  let nc: NatsConnection;
  try {
    nc = await connect(options);
  } catch (error) {
    if (isAuthRefusal(error)) throw new AuthenticationRefusedError(t.servers, describeAuth(t.auth), error);
    throw new ServerUnreachableError(t.servers, error);
  }
  // With credentials, this process's message ids become its own: nobody else can pre-empt them.
  setMessageIdKey(messageIdSecret(t.auth));
  setJetStreamDomain(nc, t.jsDomain);
  const warn = (obj: object, msg: string) => (log ? log.warn(obj, msg) : process.stderr.write(`${msg}: ${JSON.stringify(obj)}\n`));
  const open = openServerWarning(t);
  if (open) warn({ server: t.servers }, open);
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") log?.warn({ server: (s as { server?: string }).server }, "disconnected from NATS; reconnecting");
      else if (s.type === "reconnect") log?.info({ server: (s as { server?: string }).server }, "reconnected to NATS");
      else if (s.type === "error") {
        const e = (s as { error?: Error & { operation?: string; subject?: string } }).error;
        if (e?.name === "PermissionViolationError") {
          warn(
            { operation: e.operation, subject: e.subject, identity: describeAuth(t.auth) },
            `NATS permissions refuse this identity ${e.operation === "subscription" ? "a subscription to" : "publishing to"} ${e.subject}`,
          );
        } else if (e && isAuthRefusal(e)) {
          warn({ identity: describeAuth(t.auth), error: e.message }, "NATS refused the credentials");
        }
      }
    }
  })().catch(() => undefined);
  return nc;
}

// Stopping lives in shutdown.ts (signals, the stop deadline, a drain that cannot hang); the
// commands import it from here, next to connecting.
export { closeNats, onShutdown } from "./shutdown.ts";
