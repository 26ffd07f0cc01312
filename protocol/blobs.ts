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

/** Fetches an image by reference and checks it is what the reference says. */
export async function getImage(store: ObjectStore, ref: ImageRef): Promise<RgbPixels> {
  if (ref.format !== "rgb8") throw new BlobError(`image ${ref.hash}: format '${ref.format}' is not supported by this build (rgb8 only)`);
  const data = await store.getBlob(ref.hash);
  if (!data) throw new BlobError(`image ${ref.hash} is not in the object store`, { retryable: true });
  if (data.length !== ref.width * ref.height * 3 || sha256Name(data) !== ref.hash) {
    throw new BlobError(`image ${ref.hash} does not match its reference (${data.length} bytes)`);
  }
  return { width: ref.width, height: ref.height, data };
}
