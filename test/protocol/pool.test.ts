/**
 * Chunked prompt pools against a real server: stored a chunk at a time, read a window at a time
 * (only the chunks a window covers are fetched), found by id, and a pool written in one object
 * before chunks still reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  POOL_CHUNK_PROMPTS,
  PROTOCOL_VERSION,
  PoolFormatError,
  PoolReader,
  encode,
  ensureTopology,
  objectNames,
  openBlobs,
  storePool,
  type PoolPrompt,
} from "../../protocol/mod.ts";
import { cleanup, connectTo, startServer } from "../support/nats.ts";

const IMAGE = { hash: `sha256-${"ab".repeat(32)}`, format: "png" as const, width: 8, height: 8 };
const promptAt = (i: number): PoolPrompt => ({ promptId: `windows:${i + 1}`, question: `question ${i}?`, images: [IMAGE] });

let nc: NatsConnection;

beforeAll(async () => {
  nc = await connectTo((await startServer()).url);
  await ensureTopology(nc);
});
afterAll(cleanup);

describe("a chunked pool", () => {
  it("is read window by window: a window fetches only the chunks it covers", async () => {
    const blobs = await openBlobs(nc);
    const count = 2 * POOL_CHUNK_PROMPTS + 100;
    const stored = await storePool(
      blobs,
      { name: "windows", experiment: "pool" },
      Array.from({ length: count }, (_, i) => promptAt(i)),
    );
    expect(stored).toMatchObject({ count, chunks: 3 });

    const fetched: string[] = [];
    const getBlob = blobs.getBlob.bind(blobs);
    blobs.getBlob = (name: string) => (fetched.push(name), getBlob(name));
    const reader = (await PoolReader.open(blobs, "windows"))!;
    expect([reader.count, reader.chunks]).toEqual([count, 3]);
    expect(fetched).toEqual([objectNames.pool("windows")]);

    const window = await reader.slice(POOL_CHUNK_PROMPTS + 10, POOL_CHUNK_PROMPTS + 74);
    expect(window.map((p) => p.promptId)).toEqual(Array.from({ length: 64 }, (_, i) => promptAt(POOL_CHUNK_PROMPTS + 10 + i).promptId));
    expect(fetched.slice(1)).toEqual([objectNames.poolChunk("windows", 1)]);

    // Across a chunk's end: the next chunk only.
    const across = await reader.slice(2 * POOL_CHUNK_PROMPTS - 2, 2 * POOL_CHUNK_PROMPTS + 2);
    expect(across.map((p) => p.question)).toEqual([-2, -1, 0, 1].map((d) => `question ${2 * POOL_CHUNK_PROMPTS + d}?`));
    expect(fetched.slice(2)).toEqual([objectNames.poolChunk("windows", 2)]);

    // By id: the chunk is found from the number the id ends with, then answered from memory.
    const id = promptAt(7).promptId;
    expect(reader.cached(id)).toBeUndefined();
    await reader.prepare(id);
    expect(reader.cached(id)).toMatchObject({ index: 7, prompt: { question: "question 7?" } });
    expect(fetched.slice(3)).toEqual([objectNames.poolChunk("windows", 0)]);
    expect(reader.cached("windows:999999999")).toBeUndefined();
  });

  it("refuses ids that do not end in a growing number, and reads a pool stored whole before chunks", async () => {
    const blobs = await openBlobs(nc);
    await expect(storePool(blobs, { name: "unordered", experiment: "pool" }, [promptAt(5), promptAt(2)])).rejects.toThrow(PoolFormatError);
    expect(await blobs.getBlob(objectNames.pool("unordered"))).toBeNull();

    const prompts = [0, 1, 2].map((i) => ({ ...promptAt(i), promptId: `old-${String.fromCharCode(97 + i)}` }));
    await blobs.putBlob({ name: objectNames.pool("old") }, encode({ v: PROTOCOL_VERSION, type: "pool", experiment: "pool", name: "old", prompts }));
    const reader = (await PoolReader.open(blobs, "old"))!;
    expect(reader.count).toBe(3);
    expect((await reader.slice(1, 3)).map((p) => p.promptId)).toEqual(["old-b", "old-c"]);
    await reader.prepare("old-c");
    expect(reader.cached("old-c")?.index).toBe(2);
  });
});
