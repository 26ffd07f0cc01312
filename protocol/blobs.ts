/**
 * Large payloads live in the object store, named by content: images under their sha256, so a
 * message carries only a small reference and the same image is stored once.
 */
import { createHash } from "node:crypto";
import type { JetStreamManager, MsgRequest, NextMsgRequest } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";
import { objmOf } from "./jetstream.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { PopError } from "./errors.ts";
import { natsSubjects } from "./subjects.ts";
import type { ImageRef } from "./schemas.ts";
import { OBJECT_STORE, openManager } from "./topology.ts";

/** Raw 8-bit RGB pixels, row-major. */
export interface RgbPixels {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A referenced blob is not in the object store (or has the wrong size/content). */
export class BlobError extends PopError {}

export function sha256Name(bytes: Uint8Array): string {
  return `sha256-${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * Opens an object bucket: the pools-and-images one by default, or a peer's weights bucket. Its `getBlob` reads without a consumer (see {@link readBlob}); `get`
 * (the streaming read) is the library's and still makes one per call.
 */
export async function openBlobs(nc: NatsConnection, bucket: string = OBJECT_STORE): Promise<ObjectStore> {
  const [store, jsm] = await Promise.all([objmOf(nc).open(bucket), openManager(nc)]);
  const libraryGetBlob = store.getBlob.bind(store);
  // Replaced on this instance so that every caller (actors, coordinator, deploy tools) reads
  // without leaving consumers behind, with no change at the call sites.
  store.getBlob = (name: string) => readBlob(jsm, store, name, libraryGetBlob);
  return store;
}

/**
 * Objects with more chunks (8 MiB at the library's 128 KiB chunks: large weights, read rarely) go
 * through the library's consumer, which streams them without a round trip per chunk.
 */
const DIRECT_READ_MAX_CHUNKS = 64;

/**
 * Reads a whole object with one stream-message get per chunk, no consumer. The library's
 * `ObjectStore.getBlob` creates an ordered push consumer for every read and, when the read ends,
 * only unsubscribes: the server keeps the consumer until its `inactive_threshold` (5 min in
 * nats.js 3.4) runs out, so a demo piled up thousands of consumers on the store's stream, each
 * costing the server memory and timers. Chunks are found by subject from the previous chunk's
 * sequence on (`next_by_subj`, nats-server >= 2.9); the digest is checked as the library does.
 * Links, unknown digest kinds (none of ours) and large objects are left to the library.
 */
export async function readBlob(
  jsm: JetStreamManager,
  store: ObjectStore,
  name: string,
  fallback: (name: string) => Promise<Uint8Array | null>,
): Promise<Uint8Array | null> {
  const info = await store.info(name);
  if (!info || info.deleted) return null;
  if (info.options?.link || !info.digest.startsWith("SHA-256=") || info.chunks > DIRECT_READ_MAX_CHUNKS) return fallback(name);
  if (info.size === 0) return new Uint8Array(0);
  const stream = natsSubjects.objectStream(info.bucket);
  const subject = natsSubjects.objectChunks(info.bucket, info.nuid);
  const data = new Uint8Array(info.size);
  const hash = createHash("sha256");
  let filled = 0;
  let seq = 0;
  for (let i = 0; i < info.chunks; i++) {
    // The stream leader answers (a direct get may come from a replica that lags a fresh put).
    // The server takes next_by_subj here as on direct gets; nats.js types it only for those.
    const m = await jsm.streams.getMessage(stream, { seq: seq + 1, next_by_subj: subject } satisfies NextMsgRequest as unknown as MsgRequest);
    // Gone between the metadata and the chunks: the object was replaced or deleted meanwhile.
    if (!m) throw new BlobError(`object ${name} changed while it was read (chunk ${i + 1} of ${info.chunks} is gone)`, { retryable: true });
    if (filled + m.data.length > info.size) throw new BlobError(`object ${name} has more bytes than its metadata says (${info.size})`);
    data.set(m.data, filled);
    hash.update(m.data);
    filled += m.data.length;
    seq = m.seq;
  }
  if (filled !== info.size) throw new BlobError(`object ${name} has ${filled} bytes, its metadata says ${info.size}`);
  // After "SHA-256=": base64 (nats.js writes URL-safe; Node's decoder reads both alphabets), or
  // hex from some other clients, as the library accepts.
  const text = info.digest.slice("SHA-256=".length);
  const expected = Buffer.from(text, /^[0-9a-f]{64}$/i.test(text) ? "hex" : "base64");
  if (!hash.digest().equals(expected)) throw new BlobError(`object ${name} does not match its digest ${info.digest}`);
  return data;
}

/** Stores an RGB image (once) and returns its reference. */
export async function putImage(store: ObjectStore, image: RgbPixels): Promise<ImageRef> {
  if (image.data.length !== image.width * image.height * 3) {
    throw new BlobError(`image is ${image.width}x${image.height} but has ${image.data.length} bytes, not ${image.width * image.height * 3}`);
  }
  const hash = sha256Name(image.data);
  if (!(await store.info(hash))) await store.putBlob({ name: hash }, image.data);
  return { hash, format: "rgb8", width: image.width, height: image.height };
}

/**
 * An image as stored: raw RGB (`rgb8`) or the bytes of a PNG or JPEG file exactly as supplied.
 * Width and height are the ones the reference records.
 */
export interface StoredImage {
  format: ImageRef["format"];
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Stores the bytes of a PNG or JPEG file (once), unchanged, and returns its reference. The
 * caller has read format and size from the file's header.
 */
export async function putEncodedImage(store: ObjectStore, image: StoredImage): Promise<ImageRef> {
  if (image.format === "rgb8") return putImage(store, image);
  const hash = sha256Name(image.data);
  if (!(await store.info(hash))) await store.putBlob({ name: hash }, image.data);
  return { hash, format: image.format, width: image.width, height: image.height };
}

/** Fetches an image by reference and checks it is what the reference says. */
export async function getImage(store: ObjectStore, ref: ImageRef): Promise<StoredImage> {
  const data = await store.getBlob(ref.hash);
  if (!data) throw new BlobError(`image ${ref.hash} is not in the object store`, { retryable: true });
  if ((ref.format === "rgb8" && data.length !== ref.width * ref.height * 3) || sha256Name(data) !== ref.hash) {
    throw new BlobError(`image ${ref.hash} does not match its reference (${data.length} bytes)`);
  }
  return { format: ref.format, width: ref.width, height: ref.height, data };
}
