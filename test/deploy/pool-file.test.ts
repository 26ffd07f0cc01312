import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { encodePng } from "../../actors/images/png-encode.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { Flags, UsageError } from "../../deploy/cli/args.ts";
import { poolHelp, runPool } from "../../deploy/cli/commands/pool.ts";
import { PoolExistsError, PromptFileError, defaultPoolName, loadPromptFile, readPromptFile } from "../../deploy/ops/pool-file.ts";
import { MAX_STORED_BYTES, PoolReader, decode, ensureTopology, getImage, objectNames, openBlobs } from "../../protocol/mod.ts";
import { cleanup, connectTo, startServer } from "../support/nats.ts";

let dir: string;
let elsewhere: string;
let nc: NatsConnection;
let url: string;
const bytes: Record<string, Uint8Array> = {};

function rgbaImage(width: number, height: number, pixel: (x: number, y: number) => number[]): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  return data;
}

async function put(file: string, data: Uint8Array): Promise<Uint8Array> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, data);
  return data;
}

const jsonl = (...lines: (object | string)[]) => lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n";

/** Messages in the object store's stream: a load that stores nothing leaves it unchanged. */
async function storedMessages(): Promise<number> {
  return (await (await openBlobs(nc)).status()).streamInfo.state.messages;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "pop-pool-file-"));
  elsewhere = await mkdtemp(path.join(tmpdir(), "pop-pool-abs-"));
  const square = new Uint8Array(32 * 32 * 3).map((_, i) => (i % 3 === 0 ? 200 : 30));
  bytes.square = await put(path.join(dir, "imgs/square.png"), new Uint8Array(encodePng(32, 32, square)));
  const photo = jpeg.encode({ width: 640, height: 480, data: rgbaImage(640, 480, (x, y) => [x % 256, y % 256, 128, 255]) }, 85);
  bytes.photo = await put(path.join(dir, "imgs/photo.jpg"), new Uint8Array(photo.data));
  const alpha = new PNG({ width: 17, height: 300, colorType: 6 });
  alpha.data = Buffer.from(rgbaImage(17, 300, (x, y) => [0, 0, 255, (x * 15 + y) % 256]));
  bytes.alpha = await put(path.join(dir, "imgs/alpha.png"), new Uint8Array(PNG.sync.write(alpha)));
  const far = jpeg.encode({ width: 48, height: 20, data: rgbaImage(48, 20, () => [250, 250, 0, 255]) }, 90);
  bytes.far = await put(path.join(elsewhere, "far.jpg"), new Uint8Array(far.data));
  await writeFile(
    path.join(dir, "My Prompts.v2.jsonl"),
    jsonl(
      "# questions about my own pictures",
      { image: "imgs/square.png", question: "What colour is the square?" },
      "",
      { images: ["imgs/photo.jpg", "./imgs/alpha.png"], question: "Which picture is taller?" },
      { image: path.join(elsewhere, "far.jpg"), question: "What colour is this?" },
      "   # an indented comment",
      { images: ["imgs/square.png"], question: "Is it a square?" },
    ),
  );
  const server = await startServer();
  url = server.url;
  nc = await connectTo(url);
  await ensureTopology(nc);
});

afterAll(async () => {
  await cleanup();
  await rm(dir, { recursive: true, force: true });
  await rm(elsewhere, { recursive: true, force: true });
});

describe("readPromptFile", () => {
  it("parses a JSONL of prompts, with relative and absolute image paths, skipping blanks and comments", async () => {
    const f = await readPromptFile(path.join(dir, "My Prompts.v2.jsonl"));
    expect(f.name).toBe("my-prompts-v2");
    expect(f.prompts.map((p) => [p.line, p.promptId, p.images.length])).toEqual([
      [2, "my-prompts-v2:2", 1],
      [4, "my-prompts-v2:4", 2],
      [5, "my-prompts-v2:5", 1],
      [7, "my-prompts-v2:7", 1],
    ]);
    expect(f.prompts[1]!.images.map((i) => [i.format, i.width, i.height])).toEqual([
      ["jpeg", 640, 480],
      ["png", 17, 300],
    ]);
    expect(f.prompts[2]!.images[0]!.path).toBe(path.join(elsewhere, "far.jpg"));
    // The square is used twice but is one image.
    expect(f.images).toBe(4);
    expect(f.bytes).toBe(Object.values(bytes).reduce((s, b) => s + b.length, 0));
    expect(f.prompts[0]!.images[0]).toMatchObject({ format: "png", width: 32, height: 32 });
  });

  it("names a pool after the file, within the protocol's name pattern", () => {
    expect(defaultPoolName("/x/y/Cats_and_Dogs.jsonl")).toBe("cats_and_dogs");
    expect(defaultPoolName("__Ünïcode  file!.jsonl")).toBe("n-code-file");
    expect(defaultPoolName("...jsonl")).toBe("prompts");
    expect(defaultPoolName(`${"a".repeat(70)}.jsonl`)).toBe("a".repeat(64));
  });

  it("lists every bad line as FILE:LINE and stops at 20 with a count", async () => {
    await writeFile(path.join(dir, "imgs/notes.png"), "these are notes, not a picture\n");
    const file = path.join(dir, "bad.jsonl");
    await writeFile(
      file,
      jsonl(
        { image: "imgs/square.png", question: "fine" },
        '{"image": "imgs/square.png", "question": ',
        { image: "imgs/missing.png", question: "where is it?" },
        { image: "imgs/notes.png", question: "renamed text file" },
        { image: "imgs/square.png", question: "   " },
        { images: Array(17).fill("imgs/square.png"), question: "too many" },
        { image: "imgs/square.png", question: "x".repeat(64 * 1024 + 1) },
        { image: "imgs/square.png", question: "typo", answer: "no" },
        { question: "no image" },
        { image: "imgs/square.png", images: ["imgs/square.png"], question: "both" },
        "[1, 2]",
      ),
    );
    const error = await readPromptFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PromptFileError);
    const { problems, message, retryable } = error as PromptFileError;
    expect(retryable).toBe(false);
    expect(problems.map((p) => p.slice(file.length + 1).split(":")[0])).toEqual(["2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]);
    expect(problems[0]).toMatch(/bad\.jsonl:2: not valid JSON/);
    expect(problems[1]).toMatch(/bad\.jsonl:3: image 'imgs\/missing\.png': not found/);
    expect(problems[2]).toMatch(/bad\.jsonl:4: image 'imgs\/notes\.png': not a PNG or JPEG/);
    expect(problems[3]).toMatch(/bad\.jsonl:5: "question" is empty/);
    expect(problems[4]).toMatch(/17 images; a prompt holds at most 16/);
    expect(problems[5]).toMatch(/65537 characters/);
    expect(problems[6]).toMatch(/unknown key "answer"/);
    expect(problems[7]).toMatch(/no image/);
    expect(problems[8]).toMatch(/not both/);
    expect(problems[9]).toMatch(/expected a JSON object/);
    expect(message).toContain(problems[0]);

    const many = path.join(dir, "many.jsonl");
    await writeFile(many, jsonl(...Array.from({ length: 25 }, (_, i) => ({ image: `imgs/gone-${i}.png`, question: "?" }))));
    const e2 = (await readPromptFile(many).catch((e: unknown) => e)) as PromptFileError;
    expect(e2.problems).toHaveLength(25);
    expect(e2.message).toContain("many.jsonl:20:");
    expect(e2.message).not.toContain("many.jsonl:21:");
    expect(e2.message).toMatch(/and 5 more$/);
  });

  it("refuses an empty file, a missing file and a bad name", async () => {
    await writeFile(path.join(dir, "empty.jsonl"), "# nothing yet\n\n");
    await expect(readPromptFile(path.join(dir, "empty.jsonl"))).rejects.toThrow(/no prompts/);
    await expect(readPromptFile(path.join(dir, "absent.jsonl"))).rejects.toThrow(/no such file/);
    await expect(readPromptFile(path.join(dir, "My Prompts.v2.jsonl"), { name: "Bad Name" })).rejects.toThrow(PromptFileError);
  });
});

describe("loadPromptFile", () => {
  it("stores the images as they are and a pool that decodes; a second load stores nothing", async () => {
    const file = path.join(dir, "My Prompts.v2.jsonl");
    const before = await storedMessages();
    const first = await loadPromptFile(nc, file);
    expect(first.storedPool).toBe(true);
    expect(first.storedImages).toBe(4);
    const blobs = await openBlobs(nc);
    const reader = (await PoolReader.open(blobs, "my-prompts-v2"))!;
    const pool = { name: reader.name, prompts: await reader.slice(0, reader.count) };
    expect(pool.name).toBe("my-prompts-v2");
    expect(pool.prompts.map((p) => p.promptId)).toEqual(["my-prompts-v2:2", "my-prompts-v2:4", "my-prompts-v2:5", "my-prompts-v2:7"]);
    expect(pool.prompts[1]!.question).toBe("Which picture is taller?");
    const refs = pool.prompts.flatMap((p) => p.images);
    expect(refs.map((r) => [r.format, r.width, r.height])).toEqual([
      ["png", 32, 32],
      ["jpeg", 640, 480],
      ["png", 17, 300],
      ["jpeg", 48, 20],
      ["png", 32, 32],
    ]);
    const originals = [bytes.square, bytes.photo, bytes.alpha, bytes.far, bytes.square];
    for (let i = 0; i < refs.length; i++) {
      const image = await getImage(blobs, refs[i]!);
      expect(Buffer.from(image.data).equals(Buffer.from(originals[i]!))).toBe(true);
    }
    const after = await storedMessages();
    expect(after).toBeGreaterThan(before);

    const again = await loadPromptFile(nc, file);
    expect(again).toMatchObject({ storedPool: false, storedImages: 0 });
    expect((await PoolReader.open(blobs, "my-prompts-v2"))!.digest).toBe(reader.digest);
    expect(await storedMessages()).toBe(after);
  });

  it("reports its progress through a large file: each prompt checked, then stored", async () => {
    const file = path.join(dir, "large.jsonl");
    await writeFile(file, jsonl(...Array.from({ length: 2500 }, (_, i) => ({ image: "imgs/square.png", question: `question ${i}?` }))));
    const progress: string[] = [];
    const { file: loaded } = await loadPromptFile(nc, file, { onProgress: (phase, done, total) => progress.push(`${phase} ${done}/${total}`) });
    expect(loaded.count).toBe(2500);
    const reader = (await PoolReader.open(await openBlobs(nc), "large"))!;
    expect((await reader.slice(2499, 2500))[0]!.promptId).toBe("large:2500");
    expect(progress).toHaveLength(5000);
    expect(progress.slice(0, 2)).toEqual(["checking 1/2500", "checking 2/2500"]);
    expect(progress[2499]).toBe("checking 2500/2500");
    expect(progress.slice(2500, 2501)).toEqual(["storing 1/2500"]);
    expect(progress.at(-1)).toBe("storing 2500/2500");
  });

  it("refuses to overwrite a pool of the same name with other prompts unless told to", async () => {
    const file = path.join(dir, "clash.jsonl");
    await writeFile(file, jsonl({ image: "imgs/square.png", question: "first version" }));
    await loadPromptFile(nc, file);
    await writeFile(file, jsonl({ image: "imgs/square.png", question: "second version" }));
    const before = await storedMessages();
    await expect(loadPromptFile(nc, file)).rejects.toThrow(PoolExistsError);
    await expect(loadPromptFile(nc, file)).rejects.toThrow(/--replace/);
    expect(await storedMessages()).toBe(before);
    const replaced = await loadPromptFile(nc, file, { replace: true });
    expect(replaced.storedPool).toBe(true);
    const reader = (await PoolReader.open(await openBlobs(nc), "clash"))!;
    expect((await reader.slice(0, 1))[0]!.question).toBe("second version");
  });

  it("stores nothing at all from a file with errors", async () => {
    const file = path.join(dir, "half-bad.jsonl");
    await writeFile(path.join(dir, "imgs/fresh.png"), encodePng(3, 3, new Uint8Array(27).fill(77)));
    await writeFile(file, jsonl({ image: "imgs/fresh.png", question: "a new image" }, { image: "imgs/nope.png", question: "missing" }));
    const before = await storedMessages();
    await expect(loadPromptFile(nc, file)).rejects.toThrow(/half-bad\.jsonl:2: image 'imgs\/nope\.png': not found/);
    expect(await storedMessages()).toBe(before);
    expect(await (await openBlobs(nc)).getBlob(objectNames.pool("half-bad"))).toBeNull();
  });

  it("gives prompts a peer answers: the tiny backend reads the stored PNGs and JPEGs", async () => {
    const { file } = await loadPromptFile(nc, path.join(dir, "My Prompts.v2.jsonl"));
    const blobs = await openBlobs(nc);
    const prompts = [];
    const reader = (await PoolReader.open(blobs, file.name))!;
    for (const p of await reader.slice(0, reader.count)) {
      for (const ref of p.images) prompts.push({ id: `${p.promptId}/${ref.hash.slice(7, 15)}`, question: p.question, images: [await getImage(blobs, ref)] });
    }
    const backend = await TinyBackend.create(1);
    const answers = await backend.generate(prompts, { k: 2, temperature: 1, seed: 1 });
    expect(answers).toHaveLength(prompts.length);
    for (const a of answers) {
      expect(a).toHaveLength(2);
      for (const text of a) expect(typeof text).toBe("string");
    }
  });
});

describe("pop pool", () => {
  const run = (...argv: string[]) => runPool(new Flags(argv, poolHelp));

  it("refuses --from with --seed/--count, --name without --from, and a bad --name", async () => {
    await expect(run("--from", "x.jsonl", "--seed", "3")).rejects.toThrow(UsageError);
    await expect(run("--from", "x.jsonl", "--count", "3")).rejects.toThrow(/do not go with --from/);
    await expect(run("--name", "x")).rejects.toThrow(/go with --from/);
    await expect(run("--from", "x.jsonl", "--name", "Not/Valid")).rejects.toThrow(/--name must be/);
  });

  it("loads a file and says what the pool holds", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const so = vi.spyOn(process.stdout, "write").mockImplementation((s) => (out.push(String(s)), true));
    const se = vi.spyOn(process.stderr, "write").mockImplementation((s) => (err.push(String(s)), true));
    try {
      await run("--from", path.join(dir, "My Prompts.v2.jsonl"), "--name", "mine", "--server", url);
      await run("--from", path.join(dir, "My Prompts.v2.jsonl"), "--name", "mine", "--server", url);
    } finally {
      so.mockRestore();
      se.mockRestore();
    }
    const mb = (Object.values(bytes).reduce((s, b) => s + b.length, 0) / 1e6).toFixed(1);
    expect(out).toEqual([`pool 'mine' holds 4 prompts (4 images, ${mb} MB) on ${url}\n`, `pool 'mine' holds 4 prompts (4 images, ${mb} MB) on ${url}\n`]);
    expect(err.join("")).toContain("pool 'mine' already held these prompts; nothing stored");
  });
});
