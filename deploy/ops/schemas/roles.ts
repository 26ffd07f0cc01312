/**
 * Who publishes and who reads what, read off the server permissions (deploy/ops/permissions.ts)
 * rather than written again: a role sends on a subject its publish list allows (and no deny
 * refuses), and receives a subject when it may create a consumer whose filter covers it, read
 * the stream's messages directly (KV and object reads), or subscribe to it.
 */
import { natsSubjects as nats } from "../../../protocol/mod.ts";
import { coordinatorPermissions, observerPermissions, peerPermissions, type Role, type RolePermissions } from "../permissions.ts";
import { OTHER_PEER, PLACEHOLDERS } from "./placeholders.ts";

/** What one role may do on one subject. */
export interface Access {
  send: boolean;
  receive: boolean;
  /** Durable consumers (by name) it reads the subject through, if any. */
  durables: string[];
}

/** Every role's permissions in the placeholder experiment, with {@link PLACEHOLDERS.peer} as the peer. */
export function rolePermissions(): Record<Role, RolePermissions> {
  const exp = PLACEHOLDERS.experiment;
  const peers = [PLACEHOLDERS.peer, OTHER_PEER];
  return { peer: peerPermissions(exp, PLACEHOLDERS.peer, peers), coordinator: coordinatorPermissions(exp, peers), observer: observerPermissions(exp, peers) };
}

/** NATS subject matching: `*` is one token, a final `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** What `perms` allows on `subject`, a message of `stream` (a protocol stream, a KV bucket's or an object store's). */
export function accessOf(perms: RolePermissions, stream: string, subject: string): Access {
  const allowed = (rules: { subject: string }[]) => rules.some((r) => subjectMatches(r.subject, subject));
  const send = allowed(perms.publish.allow) && !allowed(perms.publish.deny);
  const create = `${nats.consumer("CREATE", stream, "")}`;
  const direct = nats.directGet(stream, "");
  const durables = new Set<string>();
  let receive = allowed(perms.subscribe.allow) && !allowed(perms.subscribe.deny);
  for (const { subject: rule } of perms.publish.allow) {
    if (rule === nats.stream("MSG.GET", stream)) receive = true;
    if (rule.startsWith(direct) && subjectMatches(rule.slice(direct.length), subject)) receive = true;
    if (!rule.startsWith(create)) continue;
    const [consumer, ...filter] = rule.slice(create.length).split(".");
    if (!subjectMatches(filter.join("."), subject)) continue;
    receive = true;
    if (consumer !== "*") durables.add(consumer!);
  }
  return { send, receive, durables: [...durables].sort() };
}
