/**
 * One NATS account per experiment. Everything an experiment stores (its streams, KV buckets and
 * object buckets) lives in its own account, so another experiment's keys on the same server
 * cannot see, read, pull from or delete any of it: JetStream API subjects, consumers and inboxes
 * are per account. The account's JetStream limits bound what the experiment's members can store
 * in total; the server refuses a write beyond them ("resource limits exceeded for account",
 * a LimitExceededError in protocol/limits.ts).
 *
 * The limits are not space set aside on disk, but nats-server adds up every account's max_file
 * (and max_mem) when JetStream starts and refuses to start it when the sum exceeds its own
 * storage (by default 75% of the store directory's free disk, or `jetstream { max_file }`). So
 * the default is modest; a large run passes `pop creds --max-store`.
 */
import { statfsSync } from "node:fs";
import { PopError } from "../../protocol/mod.ts";

/** A size flag or value could not be read. */
export class SizeFormatError extends PopError {}

const KiB = 1024;
const GiB = 1024 ** 3;

/** Stored bytes an experiment may hold when `pop creds` is not told (`--max-store`). */
export const DEFAULT_MAX_STORE = 20 * GiB;
/**
 * The least an account may be given. The state and membership buckets' byte limits
 * (protocol/limits.ts, 1.25 GiB by default) count against it when they are created, so an
 * account below ~2 GiB needs an experiment config with lower limits.
 */
export const MIN_MAX_STORE = 64 * 1024 ** 2;
/** Streams: the protocol's, two KV buckets, the pools bucket and a weights bucket per peer, with room. */
const STREAMS_PER_EXPERIMENT = 32;
/** Consumers per stream: durables, plus the ordered reads every process makes (they expire when idle). */
export const MAX_CONSUMERS_PER_STREAM = 4096;

/**
 * A store limit that a server on this machine, storing under `dir`, accepts for one account: the
 * default, or half the free disk where that is less (nats-server allows 75% to all accounts).
 * For servers started here (the demo's); a remote server's disk is the operator's to size.
 */
export function maxStoreFitting(dir: string): number {
  const { bavail, bsize } = statfsSync(dir);
  return Math.max(MIN_MAX_STORE, Math.min(DEFAULT_MAX_STORE, Math.floor((bavail * bsize) / 2)));
}

/** The account of an experiment (its name is a NAME_PATTERN, so account names cannot collide). */
export function accountOf(experiment: string): string {
  return `POP_${experiment}`;
}

/** An experiment account's JetStream limits. */
export interface AccountLimits {
  /** Bytes on disk the experiment's streams, buckets and objects may hold together. */
  maxStore: number;
  maxStreams: number;
  maxConsumers: number;
}

/** The limits for an experiment of `peers` peers. */
export function accountLimits(peers: number, maxStore = DEFAULT_MAX_STORE): AccountLimits {
  if (!Number.isSafeInteger(maxStore) || maxStore < MIN_MAX_STORE) {
    throw new SizeFormatError(`the store limit must be at least ${formatBytes(MIN_MAX_STORE)} (the state and membership buckets' limits count against it)`);
  }
  return { maxStore, maxStreams: STREAMS_PER_EXPERIMENT + peers, maxConsumers: MAX_CONSUMERS_PER_STREAM };
}

/** The account's `jetstream { ... }` entry. No memory storage: every stream is on file. */
export function renderJetStreamLimits(l: AccountLimits): string {
  return `jetstream: { max_file: ${l.maxStore}, max_mem: 0, max_streams: ${l.maxStreams}, max_consumers: ${l.maxConsumers} }`;
}

const UNITS: Record<string, number> = { "": 1, K: KiB, M: KiB ** 2, G: KiB ** 3, T: KiB ** 4 };

/** "50GB", "512MiB", "2T", "1073741824": bytes, with K/M/G/T as powers of 1024 (as nats-server reads them). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$/i.exec(text);
  if (!m) throw new SizeFormatError(`'${text}' is not a size: use e.g. 50GB, 512MB or a number of bytes`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
}

/** Bytes as the largest whole-ish unit, e.g. "20 GiB". */
export function formatBytes(n: number): string {
  for (const [unit, size] of [
    ["TiB", KiB ** 4],
    ["GiB", GiB],
    ["MiB", KiB ** 2],
    ["KiB", KiB],
  ] as const) {
    if (n >= size) return `${Number((n / size).toFixed(2))} ${unit}`;
  }
  return `${n} B`;
}
