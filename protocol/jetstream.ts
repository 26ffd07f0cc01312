/**
 * The JetStream a connection works with. At a site joined to a hub by a leafnode, the site's
 * server has a JetStream domain of its own and the experiment's streams live in the hub's
 * domain: every API request must then go to `$JS.<hub>.API.…` (and KV writes to
 * `$JS.<hub>.API.$KV.…`, as nats.js does under a domain). The domain belongs to the connection,
 * set once where it is made (deploy/cli/connect.ts), so no code path can forget it.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";

const domains = new WeakMap<NatsConnection, string>();

/** Makes `domain` (e.g. "hub") the JetStream domain of everything this connection does; undefined for the server's own. */
export function setJetStreamDomain(nc: NatsConnection, domain: string | undefined): void {
  if (domain) domains.set(nc, domain);
  else domains.delete(nc);
}

const opts = (nc: NatsConnection) => (domains.has(nc) ? { domain: domains.get(nc)! } : {});

/** A JetStream client in the connection's domain. */
export function jetStreamOf(nc: NatsConnection): JetStreamClient {
  return jetstream(nc, opts(nc));
}

/** A JetStream manager in the connection's domain (requests time out after `timeout` ms). */
export function managerOf(nc: NatsConnection, timeout = 5000): Promise<JetStreamManager> {
  return jetstreamManager(nc, { timeout, ...opts(nc) });
}

/** KV buckets in the connection's domain. */
export function kvmOf(nc: NatsConnection): Kvm {
  return new Kvm(jetStreamOf(nc));
}

/** Object stores in the connection's domain. */
export function objmOf(nc: NatsConnection): Objm {
  return new Objm(jetStreamOf(nc));
}
