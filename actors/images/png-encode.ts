/** Raw RGB as a PNG file (8-bit RGB, lossless), through pngjs, so pair images open in any viewer. */
import { PNG } from "pngjs";
import { PopError } from "../../protocol/mod.ts";

/** The pixel buffer is shorter than width x height RGB pixels. Not retryable: the bytes won't change. */
export class PngEncodeError extends PopError {}

export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  const size = width * height * 3;
  if (rgb.byteLength < size) throw new PngEncodeError(`encodePng: ${rgb.byteLength} bytes for a ${width}x${height} RGB image (needs ${size})`);
  // pngjs allocates RGBA pixels by default; with inputHasAlpha false it reads 3 bytes a pixel instead.
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false, fill: false });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, size);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}
