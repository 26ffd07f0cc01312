/**
 * Publishing a protocol message: validated, with headers, on its subject, deduplicated by id.
 *
 * Message ids and pre-emption. A stream drops any message whose `Nats-Msg-Id` it has seen in
 * its duplicate window, and any publisher may set any id. With ids that are a pure function of
 * the message (`cand:<exp>:<iter>:<prompt>:<author>`), anyone who can publish at all could store
 * a message under the id of one a peer is about to publish, and the peer's real message would be
 * dropped as a duplicate. So a process that has credentials signs its ids: the id is the logical
 * id plus an HMAC of it under a key derived from the process's own credential (see
 * {@link setMessageIdKey}). The same identity computes the same id after a restart, so
 * republishing stays idempotent, and replicas of a peer (which share its credentials) dedupe
 * against each other; nobody without the credential can compute it, so nobody can pre-empt it.
 * Without credentials ids are unsigned: a server that lets anyone publish cannot protect them.
 */
import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { encode } from "./codec.ts";
import { HEADER, headersFor, messageIdFor, subjectFor } from "./envelope.ts";
import { PopError, isPermissionViolation } from "./errors.ts";
import { LimitExceededError, asLimitError } from "./limits.ts";
import { tellProtocolEvent } from "./observe.ts";
import type { Message } from "./schemas.ts";

/** The stream could not store a message (no ack in time, no stream, server gone). */
export class PublishError extends PopError {}

/** Result of a publish: the stream sequence, and whether it was a dropped duplicate. */
export interface Published {
  subject: string;
  seq: number;
  duplicate: boolean;
}

/** Imported once: a raw key given to createHmac is imported again on every message. */
let idKey: KeyObject | undefined;

/**
 * Sets the key this process signs its message ids with: a secret derived from its credential
 * (an nkey seed, a creds file, a password), the same for every process of one identity.
 * `undefined` turns signing off.
 */
export function setMessageIdKey(key: Uint8Array | undefined): void {
  idKey = key && createSecretKey(key);
}

/** The id a message is published under: its logical id, signed when a key is set. */
export function publishedIdFor(message: Message): string {
  const logical = messageIdFor(message);
  if (!idKey) return logical;
  return `${logical}~${createHmac("sha256", idKey).update(logical).digest("base64url").slice(0, 22)}`;
}

/**
 * Publishes a message to JetStream and waits for the stream's ack. `fence` is the coordinator's
 * fencing token (protocol/fence.ts): it goes in the {@link HEADER.fence} header and in the id, so
 * that a stale leader's copy, refused by readers, cannot take the id of the new leader's.
 */
export async function publishMessage(js: JetStreamClient, message: Message, options: { timeoutMs?: number; fence?: number } = {}): Promise<Published> {
  const subject = subjectFor(message);
  const data = encode(message);
  const headers = headersFor(message);
  if (options.fence !== undefined) headers.set(HEADER.fence, String(options.fence));
  let ack: PubAck;
  try {
    ack = await js.publish(subject, data, {
      msgID: options.fence === undefined ? publishedIdFor(message) : `${publishedIdFor(message)}#${options.fence}`,
      headers,
      timeout: options.timeoutMs ?? 10_000,
    });
  } catch (error) {
    // The server's permissions refuse this identity the subject: retrying cannot help.
    if (isPermissionViolation(error)) {
      throw new PublishError(`not allowed to publish ${message.type} on ${subject}: the server's permissions for this connection's credentials refuse it`, {
        cause: error,
        retryable: false,
      });
    }
    // The stream is full or the message too large for it: the same publish is refused again.
    const limited = asLimitError(error, `${message.type} on ${subject}`, "its stream (experiment config limits)");
    if (limited instanceof LimitExceededError) throw limited;
    throw new PublishError(`could not publish ${message.type} on ${subject}: ${(error as Error).message}`, { cause: error, retryable: true });
  }
  tellProtocolEvent({ kind: "published", message, duplicate: ack.duplicate });
  return { subject, seq: ack.seq, duplicate: ack.duplicate };
}
