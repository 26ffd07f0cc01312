/** Connecting the command-line tools to NATS, with errors that say what to do. */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { PopError } from "../protocol/mod.ts";

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

export async function connectNats(servers: string, name: string, log?: Logger): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: servers.split(","), name, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000 });
  } catch (error) {
    throw new ServerUnreachableError(servers, error);
  }
  if (log) {
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") log.warn({ server: (s as { server?: string }).server }, "disconnected from NATS; reconnecting");
        else if (s.type === "reconnect") log.info({ server: (s as { server?: string }).server }, "reconnected to NATS");
      }
    })().catch(() => undefined);
  }
  return nc;
}

/** Runs `stop` once on SIGINT/SIGTERM; a second signal exits at once. */
export function onShutdown(stop: (signal: string) => Promise<void>): void {
  let stopping = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      if (stopping) process.exit(130);
      stopping = true;
      stop(sig).then(
        () => process.exit(0),
        (error) => {
          process.stderr.write(`error during shutdown: ${(error as Error).message}\n`);
          process.exit(1);
        },
      );
    });
  }
}
