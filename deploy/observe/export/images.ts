/**
 * The pairs' images as files: raw pixels encoded as PNG, a PNG or JPEG from a user's pool as it
 * is. Each image is fetched and encoded once, whatever writes it (the JSONL's image files, the
 * Parquet's embedded bytes, report.html's examples).
 */
import type { ImageRef } from "../../../protocol/mod.ts";
import { encodePng } from "../../../actors/images/png-encode.ts";

/** What a run's reader gives for an image reference; undefined when the image is gone. */
export type FetchImage = (ref: ImageRef) => Promise<{ format?: ImageRef["format"]; width: number; height: number; data: Uint8Array } | undefined>;

/** The file extension an image is written with. */
export const imageExtension = (ref: ImageRef): "png" | "jpg" => (ref.format === "jpeg" ? "jpg" : "png");

/** The path of an image's file under the output folder (`images/<hash>.<ext>`). */
export const imageFileName = (ref: ImageRef): string => `images/${ref.hash}.${imageExtension(ref)}`;

/** The encoded file of each image, fetched once by hash. */
export class ImageFiles {
  private readonly files = new Map<string, Promise<Uint8Array | undefined>>();

  constructor(private readonly fetchImage: FetchImage) {}

  /** The image as a PNG (raw pixels) or as its own PNG/JPEG file; undefined when it cannot be had. */
  file(ref: ImageRef): Promise<Uint8Array | undefined> {
    let file = this.files.get(ref.hash);
    if (!file) {
      file = this.fetchImage(ref).then((img) => img && (ref.format === "rgb8" ? encodePng(img.width, img.height, img.data) : img.data));
      this.files.set(ref.hash, file);
    }
    return file;
  }
}
