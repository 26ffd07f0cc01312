/**
 * Typed reads of the records kept in KV buckets (experiment config, progress, iteration records,
 * model records, members): the get, the check that the key holds a value (not a delete marker)
 * and the decode, in one place.
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV, KvEntry } from "@nats-io/kv";
import { InvalidArgumentError } from "@nats-io/transport-node";
import { decode } from "./codec.ts";
import type { MessageOf, MessageType } from "./schemas.ts";

/** The record under `key` decoded as `type`, or undefined when the key is absent or deleted. */
export async function readRecord<T extends MessageType>(kv: KV, key: string, type: T): Promise<MessageOf<T> | undefined> {
  return recordOf(await kv.get(key), type);
}

/** A record with the KV revision it was stored at: a newer write has a higher one. */
export interface Revised<T> {
  record: T;
  revision: number;
}

/** Like {@link readRecord}, with the record's revision. */
export async function readRevised<T extends MessageType>(kv: KV, key: string, type: T): Promise<Revised<MessageOf<T>> | undefined> {
  const entry = await kv.get(key);
  const record = recordOf(entry, type);
  return record === undefined ? undefined : { record, revision: entry!.revision };
}

/** An entry's record (e.g. from a watch), or undefined for a delete or purge marker. */
export function recordOf<T extends MessageType>(entry: KvEntry | null | undefined, type: T): MessageOf<T> | undefined {
  if (!entry || entry.operation !== "PUT") return undefined;
  return decode(entry.value, type);
}

/** JetStream API error: a message is larger than its stream allows (not among nats.js's named codes). */
const STREAM_MESSAGE_EXCEEDS_MAXIMUM = 10054;

/**
 * Whether a KV `create` failed because the key already holds a value: the server's "wrong last
 * sequence" answer (JetStream API error 10071, or 10164 when it cannot tell the last sequence).
 */
export function isKeyExists(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/**
 * Whether a write was refused for its size: the client's own check against the server's
 * max_payload (an InvalidArgumentError before anything is sent), or the stream's maximum message
 * size (JetStream API error 10054).
 */
export function isTooLarge(error: unknown): boolean {
  return error instanceof InvalidArgumentError || (error instanceof JetStreamApiError && error.code === STREAM_MESSAGE_EXCEEDS_MAXIMUM);
}
