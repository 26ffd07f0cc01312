/** Test helpers around real nats-server processes: start, connect, always clean up. */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsCluster, NatsServer } from "../../deploy/ops/nats-server.ts";

const live = new Set<{ dispose(): Promise<void> }>();
const conns = new Set<NatsConnection>();

/** A single JetStream server in a temporary directory, removed by {@link cleanup}. */
export async function startServer(): Promise<NatsServer> {
  const s = await NatsServer.start();
  live.add(s);
  return s;
}

/** A 3-node JetStream cluster, removed by {@link cleanup}. */
export async function startCluster(size = 3): Promise<NatsCluster> {
  const c = await NatsCluster.start(size);
  live.add(c);
  return c;
}

/** A connection that reconnects for as long as it takes (tests kill and restart servers); the caller closes it. */
export function natsConnect(servers: string | string[], name = "test"): Promise<NatsConnection> {
  return connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
}

/** A {@link natsConnect} connection closed by {@link cleanup}. */
export async function connectTo(servers: string | string[], name = "test"): Promise<NatsConnection> {
  const nc = await natsConnect(servers, name);
  conns.add(nc);
  return nc;
}

/** Closes every connection and stops every server started through this module. */
export async function cleanup(): Promise<void> {
  await Promise.all([...conns].map((c) => c.close().catch(() => undefined)));
  conns.clear();
  await Promise.all([...live].map((s) => s.dispose().catch(() => undefined)));
  live.clear();
}

/** Polls until `check` returns a truthy value or the time runs out. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 15_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}
