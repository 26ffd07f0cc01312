/**
 * Large payloads live in the object store, named by content: images under their sha256, so a
 * message carries only a small reference and the same image is stored once.
 */
import { createHash } from "node:crypto";
import { Objm, type ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { PopError } from "./errors.ts";
import type { ImageRef } from "./schemas.ts";
import { OBJECT_STORE } from "./topology.ts";

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

export async function openBlobs(nc: NatsConnection): Promise<ObjectStore> {
  return new Objm(nc).open(OBJECT_STORE);
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
