/**
 * Images as peers exchange them: PNG and JPEG files kept as the user supplied them, raw RGB for
 * generated worlds. Reading a file's format and size without decoding it, decoding to RGB for
 * models that need pixels, resizing, and data URLs for OpenAI-compatible servers.
 */
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { PopError } from "../../protocol/mod.ts";
import type { ImageInput, RgbImage } from "../models/contract.ts";
import { encodePng } from "./png-encode.ts";

/** The bytes are not a PNG or JPEG this build can read; the message says which file or image. */
export class ImageFormatError extends PopError {}

/** Largest side accepted (the protocol's ImageRef bound). */
export const MAX_SIDE = 16384;

/** Format and size of a PNG or JPEG file from its header alone. */
export function sniffImage(bytes: Uint8Array): { format: "png" | "jpeg"; width: number; height: number } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a && b.toString("ascii", 12, 16) === "IHDR") {
    return checked("png", b.readUInt32BE(16), b.readUInt32BE(20));
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    // Walk the marker segments to the first start-of-frame, which holds the size.
    let at = 2;
    while (at + 9 < b.length) {
      if (b[at] !== 0xff) break;
      const marker = b[at + 1]!;
      if (marker === 0xff) {
        at++;
        continue;
      }
      const len = b.readUInt16BE(at + 2);
      const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame) return checked("jpeg", b.readUInt16BE(at + 7), b.readUInt16BE(at + 5));
      at += 2 + len;
    }
    throw new ImageFormatError("JPEG without a readable frame header (truncated or not a baseline/progressive JPEG)");
  }
  throw new ImageFormatError("not a PNG or JPEG file (unrecognised header bytes)");
}

function checked(format: "png" | "jpeg", width: number, height: number) {
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) {
    throw new ImageFormatError(`${format} of ${width}x${height}: each side must be 1..${MAX_SIDE} pixels`);
  }
  return { format, width, height };
}

/** The image as 8-bit RGB pixels; transparent pixels are composited over white. */
export function decodeRgb(image: ImageInput): RgbImage {
  if (image.format === "rgb8") return { width: image.width, height: image.height, data: image.data };
  let rgba: { width: number; height: number; data: Uint8Array };
  try {
    if (image.format === "png") {
      const png = PNG.sync.read(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength));
      rgba = { width: png.width, height: png.height, data: png.data };
    } else {
      const j = jpeg.decode(image.data, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 2048, maxResolutionInMP: (MAX_SIDE * MAX_SIDE) / 1e6 });
      rgba = { width: j.width, height: j.height, data: j.data };
    }
  } catch (error) {
    throw new ImageFormatError(`cannot decode ${image.format} image (${image.width}x${image.height}): ${(error as Error).message}`, { cause: error });
  }
  const n = rgba.width * rgba.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = rgba.data[i * 4 + 3]! / 255;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(rgba.data[i * 4 + c]! * a + 255 * (1 - a));
  }
  return { width: rgba.width, height: rgba.height, data: out };
}

/** Resizes by averaging the source pixels each target pixel covers (exact when the size is unchanged). */
export function resizeRgb(image: RgbImage, width: number, height: number): RgbImage {
  if (image.width === width && image.height === height) return image;
  const out = new Uint8Array(width * height * 3);
  // Window bounds in integer arithmetic: with a float scale, (x + 1) * (W / w) can land just
  // under an integer (15 / 11 * 11 = 14.999...) and drop a source row or column.
  for (let y = 0; y < height; y++) {
    const y0 = Math.floor((y * image.height) / height);
    const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * image.height) / height));
    for (let x = 0; x < width; x++) {
      const x0 = Math.floor((x * image.width) / width);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * image.width) / width));
      const sum = [0, 0, 0];
      for (let yy = y0; yy < y1; yy++) {
        for (let xx = x0; xx < x1; xx++) {
          const at = (yy * image.width + xx) * 3;
          sum[0] += image.data[at]!;
          sum[1] += image.data[at + 1]!;
          sum[2] += image.data[at + 2]!;
        }
      }
      const count = (y1 - y0) * (x1 - x0);
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = Math.round(sum[c]! / count);
    }
  }
  return { width, height, data: out };
}

/** An RGB image of exactly `width` x `height`, whatever the input's format and size. */
export function rgbOfSize(image: ImageInput, width: number, height: number): RgbImage {
  return resizeRgb(decodeRgb(image), width, height);
}

/** A `data:` URL of the image: PNG and JPEG bytes as they are, raw RGB encoded as (lossless) PNG. */
export function dataUrl(image: ImageInput): string {
  if (image.format === "rgb8") return `data:image/png;base64,${encodePng(image.width, image.height, image.data).toString("base64")}`;
  return `data:image/${image.format};base64,${Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength).toString("base64")}`;
}

/** Parses a `data:image/png|jpeg;base64,...` URL back into an image (what a server receives). */
export function imageFromDataUrl(url: string): ImageInput {
  const m = /^data:image\/(png|jpe?g);base64,([A-Za-z0-9+/=\s]+)$/.exec(url);
  if (!m) throw new ImageFormatError(`image_url must be a data URL of a PNG or JPEG (data:image/png;base64,...), got '${url.slice(0, 40)}...'`);
  const data = new Uint8Array(Buffer.from(m[2]!, "base64"));
  const { format, width, height } = sniffImage(data);
  return { format, width, height, data };
}
