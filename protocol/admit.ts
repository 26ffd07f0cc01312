/**
 * The one policy for every message a consumer reads, whoever reads it (the actors' inboxes, the
 * coordinator's collectors and control follower, training's read of the pairs): decode, validate
 * against the schema, check that the subject's identity is the body's, check the speaker is on
 * the iteration's roster (and whatever else the reader checks), and either admit the message or
 * say why not. What is not admitted goes to the dead-letter stream with the reason; nothing bad
 * is counted or skipped silently.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { decode } from "./codec.ts";
import { claimedIdentity, verifyEnvelope } from "./envelope.ts";
import { DecodeError } from "./errors.ts";
import { tellProtocolEvent } from "./observe.ts";
import { publishMessage } from "./publish.ts";
import { DEAD_LETTER_MAX_PAYLOAD, type DeadLetter, type Message, type MessageOf, type MessageType } from "./schemas.ts";
import type { StreamMessage } from "./reader/message.ts";
import { isName, parseSubject } from "./subjects.ts";
import { PROTOCOL_VERSION } from "./version.ts";

/** Why a message was not admitted. */
export type Rejection = { reason: DeadLetter["reason"]; detail: string };

/** A message admitted, or the reason it was not. */
export type Admission<T> = { ok: true; message: T } | ({ ok: false } & Rejection);

/** Who may speak in a message: the roster of its iteration, when the reader knows it. */
export type Roster = (message: Message) => ReadonlySet<string> | undefined;

/**
 * A reader's own consistency check of a message that passed the rest (e.g. the coordinator's: a
 * verdict only on authors its judge was assigned): what is wrong with it, or undefined. A message
 * it finds fault with is dead-lettered as invalid.
 */
export type Check = (message: Message) => string | undefined;

/**
 * Whether a message comes from a leader that had lost the lead (protocol/fence.ts): what is
 * stale about it, or undefined. What it finds stale is dead-lettered as `stale_leader`.
 */
export type Fence = (message: Message) => string | undefined;

/** Applies the policy to one delivery. */
export function admit<K extends MessageType>(
  subject: string,
  data: Uint8Array,
  types: readonly K[],
  roster?: Roster,
  check?: Check,
  fence?: Fence,
  delivery?: { redelivered: boolean },
): Admission<MessageOf<K>> {
  let message: Message;
  try {
    message = decode(data);
    if (!(types as readonly string[]).includes(message.type)) {
      throw new DecodeError("invalid", [`a '${message.type}' message does not belong here (expected ${types.join(" or ")})`]);
    }
    verifyEnvelope(subject, message);
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, reason: error.reason, detail: error.problems.join("; ") };
    return { ok: false, reason: "bad_subject", detail: (error as Error).message };
  }
  const stale = fence?.(message);
  if (stale !== undefined) return { ok: false, reason: "stale_leader", detail: stale };
  const speaker = claimedIdentity(message);
  const members = roster?.(message);
  if (speaker !== undefined && members && !members.has(speaker)) {
    return { ok: false, reason: "not_member", detail: `'${speaker}' is not a member of this iteration (members: ${[...members].join(", ")})` };
  }
  const problem = check?.(message);
  if (problem !== undefined) return { ok: false, reason: "invalid", detail: problem };
  tellProtocolEvent({ kind: "admitted", message, redelivered: delivery?.redelivered ?? false });
  return { ok: true, message: message as MessageOf<K> };
}

/**
 * Stores a message that was not admitted in the dead-letter stream, with the reason and its
 * original bytes. Its id is the stream position and reason, so a reader that meets the same
 * message again (a replay, a restart) leaves one dead letter for it.
 */
export async function deadLetter(js: JetStreamClient, m: StreamMessage, rejection: Rejection, consumer: string): Promise<void> {
  let experiment = "unknown";
  try {
    experiment = parseSubject(m.subject).experiment;
  } catch {
    // the subject itself is what is wrong; keep "unknown"
  }
  const headers: Record<string, string[]> = {};
  if (m.headers) for (const [k, v] of m.headers) headers[k] = v;
  const letter: DeadLetter = {
    v: PROTOCOL_VERSION,
    type: "dead_letter",
    experiment: isName(experiment) ? experiment : "unknown",
    reason: rejection.reason,
    detail: rejection.detail.slice(0, 8192),
    subject: m.subject.slice(0, 1024),
    stream: m.info.stream,
    streamSeq: m.info.streamSequence,
    deliveries: m.info.deliveryCount,
    consumer,
    headers,
    payload: m.data.subarray(0, DEAD_LETTER_MAX_PAYLOAD),
    payloadBytes: m.data.length,
    at: Date.now(),
  };
  await publishMessage(js, letter);
  tellProtocolEvent({ kind: "dead_lettered", reason: rejection.reason });
}
