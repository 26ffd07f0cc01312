import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTopology, getImage, OBJECT_STORE, openBlobs, openManager, putImage, type ImageRef } from "../../protocol/mod.ts";
import { cleanup, connectTo, startServer } from "../support/nats.ts";

const STREAM = `OBJ_${OBJECT_STORE}`;

async function consumerCount(nc: NatsConnection): Promise<number> {
  const jsm = await openManager(nc);
  return (await jsm.streams.info(STREAM)).state.consumer_count;
}

describe("object store reads", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    const server = await startServer();
    nc = await connectTo(server.url);
    await ensureTopology(nc);
  });
  afterAll(cleanup);

  it("leave no consumers behind on the store's stream", async () => {
    const blobs = await openBlobs(nc);
    const refs: ImageRef[] = [];
    for (let i = 0; i < 200; i++) refs.push(await putImage(blobs, { width: 8, height: 8, data: randomBytes(8 * 8 * 3) }));
    expect(await consumerCount(nc)).toBe(0);
    for (const ref of refs) {
      const image = await getImage(blobs, ref);
      expect(image.data.length).toBe(8 * 8 * 3);
    }
    // Each library read used to leave an ordered consumer for 5 minutes (its inactive_threshold).
    expect(await consumerCount(nc)).toBeLessThanOrEqual(1);
  });

  it("read multi-chunk, empty and missing objects whole and checked", async () => {
    const blobs = await openBlobs(nc);
    const big = randomBytes(300_000); // 3 chunks of the library's 128 KiB
    await blobs.putBlob({ name: "big" }, big);
    // Another object's chunks between big's would trip a reader that assumed consecutive sequences.
    await blobs.putBlob({ name: "other" }, randomBytes(1000));
    await blobs.putBlob({ name: "big" }, big); // replaced: new chunks, the old ones purged
    await blobs.putBlob({ name: "empty" }, new Uint8Array(0));
    const before = await consumerCount(nc);
    expect(Buffer.from((await blobs.getBlob("big"))!).equals(big)).toBe(true);
    expect((await blobs.getBlob("empty"))!.length).toBe(0);
    expect(await blobs.getBlob("nothing-here")).toBeNull();
    await blobs.delete("other");
    expect(await blobs.getBlob("other")).toBeNull();
    expect(await consumerCount(nc)).toBe(before);
  });
});
