/**
 * Typed reads of the records kept in KV buckets (experiment config, progress, iteration records,
 * model records, members): the get, the check that the key holds a value (not a delete marker)
 * and the decode, in one place.
 */
import type { KV, KvEntry } from "@nats-io/kv";
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
