/**
 * Prompt pools in the object store, a window at a time. A pool is an index object under its name
 * and chunks of at most {@link POOL_CHUNK_PROMPTS} prompts (and about {@link POOL_CHUNK_BYTES})
 * under the name and the chunk's number, so that a reader decodes only the chunk it needs and a
 * writer never holds the whole pool. A pool written in one object before pools were chunked is
 * read as a pool of one chunk.
 *
 * Every stored pool is pinned by digests: the experiment config (written only by the coordinator)
 * holds the sha256 of the index object, and the index the sha256 of each chunk object, so a
 * reader that is given the config's digest refuses any byte of the pool that differs
 * ({@link PoolDigestError}), chunks included.
 *
 * Pool prompt ids end in a number that grows along the pool (the tiny world's `tiny-pool-7-12`,
 * a file's `<name>:<line>`): the index keeps each chunk's first such number, so that an id finds
 * its chunk without a table of every id.
 */
import { createHash } from "node:crypto";
import type { ObjectStore } from "@nats-io/obj";
import { MAX_STORED_BYTES, decode, encode } from "./codec.ts";
import { PopError } from "./errors.ts";
import { asLimitError } from "./limits.ts";
import { objectNames } from "./state.ts";
import type { PoolPrompt, PromptPool } from "./schemas.ts";
import { PROTOCOL_VERSION } from "./version.ts";

/** Most prompts in one chunk. */
export const POOL_CHUNK_PROMPTS = 4096;
/** A chunk is closed once its prompts reach about this many bytes (questions can be long). */
export const POOL_CHUNK_BYTES = 512 * 1024;
/** Decoded chunks a reader keeps (the window being published, and the one stragglers are in). */
const CACHED_CHUNKS = 4;

/** A pool cannot be stored as given (its ids do not follow the pool's rule), or a stored one is inconsistent. */
export class PoolFormatError extends PopError {}

/** A stored pool's index or chunk differs from the digest pinned for it: refused, never read. */
export class PoolDigestError extends PopError {}

const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** The number a pool prompt id ends with, or undefined when it ends otherwise. */
export function promptIdKey(promptId: string): number | undefined {
  const m = /(\d{1,15})$/.exec(promptId);
  return m ? Number(m[1]) : undefined;
}

/** What identifies a prompt's content: its id, question and image references. */
function contentOf(p: PoolPrompt): string {
  return JSON.stringify([p.promptId, p.question, p.images.map((i) => [i.hash, i.format, i.width, i.height])]);
}

/** Rough encoded size of a prompt, to close chunks by bytes. */
const sizeOf = (p: PoolPrompt) => p.promptId.length + p.question.length * 3 + p.images.length * 100 + 16;

export interface StoredPool {
  count: number;
  chunks: number;
  /** Digest of the content: equal for the same prompts in the same order. */
  digest: string;
  /** sha256 (hex) of the index object's bytes: what an experiment config pins. */
  sha256: string;
}

/**
 * Stores a pool chunk by chunk as `prompts` arrive, the index last (a reader never sees an index
 * whose chunks are missing). `digestOnly` computes what would be stored and stores nothing (to
 * tell an identical reload before writing).
 */
export async function storePool(
  blobs: ObjectStore | undefined,
  meta: { name: string; experiment: string; description?: string },
  prompts: Iterable<PoolPrompt> | AsyncIterable<PoolPrompt>,
): Promise<StoredPool> {
  const hash = createHash("sha256");
  const starts: number[] = [];
  const keys: number[] = [];
  const chunkSha256: string[] = [];
  let chunk: PoolPrompt[] = [];
  let bytes = 0;
  let count = 0;
  let lastKey = -1;
  const flush = async () => {
    if (!chunk.length) return;
    const first = count - chunk.length;
    starts.push(first);
    keys.push(promptIdKey(chunk[0]!.promptId)!);
    const message: PromptPool = { v: PROTOCOL_VERSION, type: "pool", experiment: meta.experiment, name: meta.name, prompts: chunk, first };
    const encoded = encode(message);
    chunkSha256.push(sha256Hex(encoded));
    if (blobs) await putChecked(blobs, objectNames.poolChunk(meta.name, starts.length - 1), encoded);
    chunk = [];
    bytes = 0;
  };
  for await (const p of prompts) {
    const key = promptIdKey(p.promptId);
    if (key === undefined || key <= lastKey)
      throw new PoolFormatError(`prompt id '${p.promptId}' (prompt ${count + 1}) must end in a number larger than the previous prompt's (${lastKey})`);
    lastKey = key;
    hash.update(contentOf(p)).update("\n");
    chunk.push(p);
    count++;
    bytes += sizeOf(p);
    if (chunk.length >= POOL_CHUNK_PROMPTS || bytes >= POOL_CHUNK_BYTES) await flush();
  }
  await flush();
  if (count === 0) throw new PoolFormatError(`pool '${meta.name}' has no prompts`);
  const digest = `sha256-${hash.digest("hex")}`;
  const index: PromptPool = {
    v: PROTOCOL_VERSION,
    type: "pool",
    experiment: meta.experiment,
    name: meta.name,
    prompts: [],
    chunks: { count, starts, keys, digest, chunkSha256 },
  };
  const encoded = encode(index);
  if (blobs) await putChecked(blobs, objectNames.pool(meta.name), encoded, meta.description);
  return { count, chunks: starts.length, digest, sha256: sha256Hex(encoded) };
}

/** Puts an object of a pool; a full bucket becomes a LimitExceededError. */
async function putChecked(blobs: ObjectStore, name: string, bytes: Uint8Array, description?: string): Promise<void> {
  try {
    await blobs.putBlob({ name, description }, bytes);
  } catch (error) {
    throw asLimitError(error, `pool object ${name}`, "the pools-and-images bucket (limits.blobsBytes)");
  }
}

interface Chunk {
  first: number;
  prompts: PoolPrompt[];
  /** Position in the chunk by id, made on first lookup. */
  positions?: Map<string, number>;
}

/**
 * Reads a stored pool a chunk at a time, keeping the last few decoded. Lookups by position or id
 * are async (they may load a chunk); {@link PoolReader.cached} answers from what is loaded.
 */
export class PoolReader {
  private readonly cache = new Map<number, Chunk>();

  private constructor(
    private readonly blobs: ObjectStore,
    readonly name: string,
    readonly count: number,
    /** Where each chunk starts; the index's. */
    private readonly starts: number[],
    private readonly keys: number[],
    /** The content digest (made from the prompts for a one-object pool). */
    readonly digest: string,
    /** sha256 (hex) of the index object's bytes: what an experiment config pins. */
    readonly sha256: string,
    /** sha256 of each chunk object, by chunk (undefined: a pool stored before chunks had digests). */
    private readonly chunkSha256: string[] | undefined,
    single?: PoolPrompt[],
  ) {
    if (single) this.cache.set(0, { first: 0, prompts: single });
  }

  /**
   * The pool stored under `name`, or undefined when there is none. With `sha256` (the digest the
   * experiment config pins), an index or chunk whose bytes differ is refused with a
   * {@link PoolDigestError}; so is a chunked pool stored before chunks had digests, which cannot
   * be checked.
   */
  static async open(blobs: ObjectStore, name: string, pinned?: { sha256?: string }): Promise<PoolReader | undefined> {
    const bytes = await blobs.getBlob(objectNames.pool(name));
    if (!bytes) return undefined;
    const sha256 = sha256Hex(bytes);
    if (pinned?.sha256 !== undefined && sha256 !== pinned.sha256) {
      throw new PoolDigestError(
        `prompt pool '${name}' is not the one the experiment config pins: its index hashes to ${sha256}, the config says ${pinned.sha256} (was it replaced?); refusing to read it`,
      );
    }
    const pool = decode(bytes, "pool", { maxBytes: MAX_STORED_BYTES });
    if (pool.chunks) {
      const c = pool.chunks;
      if (c.chunkSha256 !== undefined && c.chunkSha256.length !== c.starts.length)
        throw new PoolFormatError(`pool '${name}' lists ${c.chunkSha256.length} chunk digests for ${c.starts.length} chunks`);
      if (pinned?.sha256 !== undefined && c.chunkSha256 === undefined) {
        throw new PoolDigestError(
          `prompt pool '${name}' was stored before its chunks had digests, so they cannot be checked; store it again (pop pool --replace) before pinning it`,
        );
      }
      return new PoolReader(blobs, name, c.count, c.starts, c.keys, c.digest, sha256, c.chunkSha256);
    }
    // Written whole, before chunks: one chunk, always held (such a pool is bounded by MAX_STORED_BYTES).
    const hash = createHash("sha256");
    for (const p of pool.prompts) hash.update(contentOf(p)).update("\n");
    return new PoolReader(blobs, name, pool.prompts.length, [0], [], `sha256-${hash.digest("hex")}`, sha256, [], pool.prompts);
  }

  /** Whether every byte this reader reads is covered by its index's digest (false for chunked pools stored before chunk digests). */
  get verifiable(): boolean {
    return this.chunkSha256 !== undefined;
  }

  get chunks(): number {
    return this.starts.length;
  }

  /** Prompts `start` to `end` (exclusive) in pool order. */
  async slice(start: number, end: number): Promise<PoolPrompt[]> {
    const out: PoolPrompt[] = [];
    for (let i = Math.max(0, start); i < Math.min(end, this.count);) {
      const chunk = await this.load(this.chunkAt(i));
      const upTo = Math.min(end, chunk.first + chunk.prompts.length);
      out.push(...chunk.prompts.slice(i - chunk.first, upTo - chunk.first));
      i = upTo;
    }
    return out;
  }

  /** Loads the chunk that would hold `promptId` (so that {@link cached} can answer for it). */
  async prepare(promptId: string): Promise<void> {
    const c = this.chunkOf(promptId);
    if (c !== undefined) await this.load(c);
  }

  /** The pool position and prompt of `promptId` when its chunk is loaded; undefined otherwise or when not in the pool. */
  cached(promptId: string): { index: number; prompt: PoolPrompt } | undefined {
    const c = this.chunkOf(promptId);
    const chunk = c === undefined ? undefined : this.cache.get(c);
    if (!chunk) return undefined;
    chunk.positions ??= new Map(chunk.prompts.map((p, i) => [p.promptId, i]));
    const at = chunk.positions.get(promptId);
    return at === undefined ? undefined : { index: chunk.first + at, prompt: chunk.prompts[at]! };
  }

  /** The chunk holding pool position `index`. */
  private chunkAt(index: number): number {
    return lastAtMost(this.starts, index);
  }

  /** The chunk that would hold `promptId`, by the number its id ends with. */
  private chunkOf(promptId: string): number | undefined {
    if (this.starts.length === 1) return 0;
    const key = promptIdKey(promptId);
    if (key === undefined || key < this.keys[0]!) return undefined;
    return lastAtMost(this.keys, key);
  }

  private async load(c: number): Promise<Chunk> {
    const hit = this.cache.get(c);
    if (hit) {
      // Most recently used last: the first entry is the one to drop.
      this.cache.delete(c);
      this.cache.set(c, hit);
      return hit;
    }
    const bytes = await this.blobs.getBlob(objectNames.poolChunk(this.name, c));
    if (!bytes) throw new PoolFormatError(`pool '${this.name}' has no chunk ${c} (was it replaced while in use?)`, { retryable: true });
    const want = this.chunkSha256?.[c];
    if (want !== undefined && sha256Hex(bytes) !== want) {
      throw new PoolDigestError(`chunk ${c} of prompt pool '${this.name}' does not match the digest its index gives (was it replaced?); refusing to read it`);
    }
    const pool = decode(bytes, "pool", { maxBytes: MAX_STORED_BYTES });
    if (pool.first !== this.starts[c]) throw new PoolFormatError(`chunk ${c} of pool '${this.name}' starts at ${pool.first}, its index says ${this.starts[c]}`);
    const chunk: Chunk = { first: pool.first!, prompts: pool.prompts };
    this.cache.set(c, chunk);
    while (this.cache.size > CACHED_CHUNKS) this.cache.delete(this.cache.keys().next().value!);
    return chunk;
  }
}

/** The last position in ascending `xs` whose value is at most `x` (0 when none). */
function lastAtMost(xs: number[], x: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (xs[mid]! <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
