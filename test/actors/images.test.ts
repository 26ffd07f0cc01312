import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { ImageFormatError, dataUrl, decodeRgb, imageFromDataUrl, resizeRgb, rgbOfSize, sniffImage } from "../../actors/images/codec.ts";
import { encodePng } from "../../actors/images/png-encode.ts";

/** RGBA pixels from a function of the position. */
function rgba(width: number, height: number, pixel: (x: number, y: number) => [number, number, number, number]): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  return data;
}

function pngWithAlpha(width: number, height: number, pixel: (x: number, y: number) => [number, number, number, number]): Uint8Array {
  const png = new PNG({ width, height, colorType: 6 });
  png.data = Buffer.from(rgba(width, height, pixel));
  return new Uint8Array(PNG.sync.write(png));
}

/** Left half red, right half blue. */
const halves = (width: number, height: number, quality = 90, comments?: string[]) =>
  new Uint8Array(
    jpeg.encode({ width, height, data: rgba(width, height, (x) => (x < width / 2 ? [255, 0, 0, 255] : [0, 0, 255, 255])), comments }, quality).data,
  );

const at = (img: { width: number; data: Uint8Array }, x: number, y: number) => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];

describe("sniffImage", () => {
  it("reads format and size from PNG and JPEG headers, past JPEG segments before the frame", () => {
    expect(sniffImage(encodePng(5, 3, new Uint8Array(45)))).toEqual({ format: "png", width: 5, height: 3 });
    expect(sniffImage(pngWithAlpha(17, 300, () => [0, 0, 0, 0]))).toEqual({ format: "png", width: 17, height: 300 });
    expect(sniffImage(halves(640, 480))).toEqual({ format: "jpeg", width: 640, height: 480 });
    // Comment segments sit between the JFIF header and the frame header.
    expect(sniffImage(halves(40, 30, 80, ["a comment", "x".repeat(3000)]))).toEqual({ format: "jpeg", width: 40, height: 30 });
  });

  it("refuses garbage, text, truncated JPEGs and zero-sized PNGs with ImageFormatError", () => {
    expect(() => sniffImage(new TextEncoder().encode("just some text, not an image"))).toThrow(ImageFormatError);
    expect(() => sniffImage(new Uint8Array(0))).toThrow(/not a PNG or JPEG/);
    expect(() => sniffImage(halves(40, 30).subarray(0, 12))).toThrow(ImageFormatError);
    const zero = Buffer.from(encodePng(2, 2, new Uint8Array(12)));
    zero.writeUInt32BE(0, 16); // width in IHDR
    expect(() => sniffImage(zero)).toThrow(/1\.\.16384/);
  });
});

describe("encodePng", () => {
  it("writes raw RGB as a PNG that an independent decoder reads back pixel for pixel", () => {
    const rgb = new Uint8Array(5 * 3 * 3).map((_, i) => (i * 37) % 256);
    const png = PNG.sync.read(encodePng(5, 3, rgb));
    expect([png.width, png.height]).toEqual([5, 3]);
    const back = Array.from({ length: 15 }, (_, i) => [...png.data.subarray(i * 4, i * 4 + 3)]).flat();
    expect(back).toEqual([...rgb]);
    expect(decodeRgb({ format: "png", width: 5, height: 3, data: encodePng(5, 3, rgb) }).data).toEqual(rgb);
  });

  it("refuses a pixel buffer too short for the size", () => {
    expect(() => encodePng(4, 4, new Uint8Array(10))).toThrow(/needs 48/);
  });
});

describe("decodeRgb", () => {
  it("passes raw RGB through", () => {
    const img = { format: "rgb8" as const, width: 1, height: 1, data: new Uint8Array([1, 2, 3]) };
    expect(decodeRgb(img).data).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("composites PNG alpha over white", () => {
    const colours: [number, number, number, number][] = [
      [255, 0, 0, 0],
      [0, 0, 255, 128],
      [0, 255, 0, 255],
    ];
    const bytes = pngWithAlpha(3, 1, (x) => colours[x]!);
    const rgb = decodeRgb({ ...sniffImage(bytes), data: bytes });
    expect(rgb.width).toBe(3);
    expect(at(rgb, 0, 0)).toEqual([255, 255, 255]); // fully transparent: white
    expect(at(rgb, 1, 0)).toEqual([127, 127, 255]); // half: halfway to white
    expect(at(rgb, 2, 0)).toEqual([0, 255, 0]); // opaque: as is
  });

  it("decodes a JPEG to roughly the source colours", () => {
    const bytes = halves(64, 48);
    const rgb = decodeRgb({ ...sniffImage(bytes), data: bytes });
    expect([rgb.width, rgb.height, rgb.data.length]).toEqual([64, 48, 64 * 48 * 3]);
    const close = (got: number[], want: number[]) => got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(20));
    close(at(rgb, 10, 24), [255, 0, 0]);
    close(at(rgb, 54, 24), [0, 0, 255]);
  });

  it("throws ImageFormatError for a file whose header is fine but whose body is not", () => {
    const png = encodePng(8, 8, new Uint8Array(192));
    const broken = png.subarray(0, 40);
    expect(() => decodeRgb({ format: "png", width: 8, height: 8, data: broken })).toThrow(ImageFormatError);
  });
});

describe("resizeRgb", () => {
  it("averages the source pixels each target pixel covers", () => {
    // 4x2 -> 2x1: each target pixel is the mean of a 2x2 block.
    const src = { width: 4, height: 2, data: new Uint8Array([0, 0, 0, 10, 10, 10, 100, 0, 0, 100, 0, 0, 20, 20, 20, 30, 30, 30, 0, 200, 0, 0, 200, 0]) };
    const out = resizeRgb(src, 2, 1);
    expect([...out.data]).toEqual([15, 15, 15, 50, 100, 0]);
    expect(resizeRgb(src, 4, 2)).toBe(src);
  });

  it("covers every source column when the ratio is not a whole number", () => {
    // 15 -> 11 once dropped the last column (15 / 11 * 11 rounds to just under 15).
    const data = new Uint8Array(15 * 3);
    data.set([255, 255, 255], 14 * 3);
    const out = resizeRgb({ width: 15, height: 1, data }, 11, 1);
    expect(at(out, 10, 0)[0]).toBeGreaterThan(0);
  });

  it("takes a PNG or JPEG of any size to the size a model wants", () => {
    const bytes = halves(640, 480);
    const small = rgbOfSize({ ...sniffImage(bytes), data: bytes }, 32, 32);
    expect([small.width, small.height, small.data.length]).toEqual([32, 32, 32 * 32 * 3]);
    expect(at(small, 4, 16)[0]).toBeGreaterThan(200);
    expect(at(small, 28, 16)[2]).toBeGreaterThan(200);
  });
});

describe("data URLs", () => {
  it("keeps PNG and JPEG bytes as they are and round-trips them", () => {
    for (const bytes of [pngWithAlpha(17, 3, (x) => [x * 10, 0, 0, 200]), halves(20, 10)]) {
      const image = { ...sniffImage(bytes), data: bytes };
      const url = dataUrl(image);
      expect(url.startsWith(`data:image/${image.format};base64,`)).toBe(true);
      const back = imageFromDataUrl(url);
      expect(back).toEqual({ format: image.format, width: image.width, height: image.height, data: bytes });
    }
  });

  it("encodes raw RGB as a lossless PNG", () => {
    const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const back = imageFromDataUrl(dataUrl({ format: "rgb8", width: 2, height: 1, data }));
    expect(back.format).toBe("png");
    expect(decodeRgb(back).data).toEqual(data);
  });

  it("refuses URLs that are not PNG/JPEG data URLs", () => {
    expect(() => imageFromDataUrl("https://example.com/cat.png")).toThrow(ImageFormatError);
    expect(() => imageFromDataUrl(`data:image/png;base64,${Buffer.from("hello").toString("base64")}`)).toThrow(ImageFormatError);
  });
});
