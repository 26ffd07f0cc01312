/**
 * Objects have owners (issue 27, parts 1 and 4), against nats-server with `pop creds` keys: a
 * member's key cannot write, replace or delete another member's weights or the coordinator's
 * pools and images; bytes that differ from the digest their owner recorded are refused by the
 * loader; a member over its share is refused by the server with a named error.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COORDINATOR_IDENTITY } from "../../deploy/ops/creds.ts";
import {
  DEFAULT_LIMITS,
  LimitExceededError,
  PoolDigestError,
  PoolReader,
  PROTOCOL_VERSION,
  WeightsDigestError,
  ensureTopology,
  ensureWeightsBucket,
  jetStreamOf,
  natsSubjects,
  objectNames,
  objmOf,
  openBlobs,
  openManager,
  putWeights,
  readWeights,
  storePool,
  weightsBucket,
  type ModelRecord,
  type PoolPrompt,
} from "../../protocol/mod.ts";
import { CredentialedServer } from "../support/networks.ts";

const EXP = "trust";
const PEERS = ["alice", "bob"];
const SMALL = 256 * 1024;

function record(stored: { bucket: string; object: string; sha256: string }, bytes: number): ModelRecord {
  return { v: PROTOCOL_VERSION, type: "model", experiment: EXP, peer: "alice", iteration: 1, modelVersion: "v1", bytes, at: 1, ...stored };
}

const prompts = (n: number): PoolPrompt[] => Array.from({ length: n }, (_, i) => ({ promptId: `p-${i}`, question: `question ${i}`, images: [] }));

describe("objects have owners (pop creds keys)", () => {
  let network: CredentialedServer;
  let coordinator: NatsConnection;
  let alice: NatsConnection;
  let bob: NatsConnection;

  beforeAll(async () => {
    network = await CredentialedServer.start({ experiment: EXP, peers: PEERS });
    coordinator = await network.as(COORDINATOR_IDENTITY);
    await ensureTopology(coordinator, { limits: DEFAULT_LIMITS });
    // As the coordinator does for every member it sees; bob's share is small, to overflow it.
    await ensureWeightsBucket(coordinator, EXP, "alice");
    await ensureWeightsBucket(coordinator, EXP, "bob", { ...DEFAULT_LIMITS, weightsBytes: SMALL });
    [alice, bob] = await Promise.all([network.as("alice"), network.as("bob")]);
  });
  afterAll(() => network?.dispose());

  it("a member cannot write, replace or delete another member's weights; the owner's stay as they were", async () => {
    const weights = new Uint8Array(300_000).fill(7);
    const object = objectNames.model(EXP, "alice", "v1");
    const stored = await putWeights(alice, { experiment: EXP, peer: "alice", object, description: "alice" }, weights);
    expect(stored.bucket).toBe(weightsBucket(EXP, "alice"));
    // Straight to her bucket's subjects, as well as through the library.
    const js = jetStreamOf(bob);
    await expect(js.publish(natsSubjects.objectChunks(stored.bucket, "AAAAAAAAAAAAAAAAAAAAAA"), new Uint8Array(10))).rejects.toThrow(/permission/i);
    await expect(js.publish(natsSubjects.objectMeta(stored.bucket, Buffer.from(object).toString("base64url")), new Uint8Array(10))).rejects.toThrow(
      /permission/i,
    );
    const hers = await objmOf(bob).open(stored.bucket, false);
    await expect(hers.putBlob({ name: object }, new Uint8Array(10).fill(1))).rejects.toThrow();
    await expect(hers.putBlob({ name: "model/trust/alice/v2" }, new Uint8Array(10))).rejects.toThrow();
    await expect(hers.delete(object)).rejects.toThrow();
    const jsm = await openManager(bob);
    await expect(jsm.streams.purge(`OBJ_${weightsBucket(EXP, "alice")}`)).rejects.toThrow();
    await expect(jsm.streams.delete(`OBJ_${weightsBucket(EXP, "alice")}`)).rejects.toThrow();
    // Nor give itself a larger share, nor make a bucket of its own choosing.
    const own = `OBJ_${weightsBucket(EXP, "bob")}`;
    const config = (await (await openManager(coordinator)).streams.info(own)).config;
    await expect(jsm.streams.update(own, { ...config, max_msgs: -1 })).rejects.toThrow();
    await expect(ensureWeightsBucket(bob, EXP, "bob", { ...DEFAULT_LIMITS, weightsBytes: 1 << 40 })).rejects.toThrow();
    const loaded = await readWeights(alice, record(stored, weights.length));
    expect(loaded?.verified).toBe(true);
    expect(Buffer.from(loaded!.bytes).equals(Buffer.from(weights))).toBe(true);
  });

  it("a member cannot write or delete the coordinator's pools and images", async () => {
    const blobs = await openBlobs(coordinator);
    const pool = await storePool(blobs, { name: "trust-pool", experiment: EXP }, prompts(10));
    const theirs = await openBlobs(bob);
    await expect(theirs.putBlob({ name: objectNames.pool("trust-pool") }, new Uint8Array([1, 2, 3]))).rejects.toThrow();
    await expect(theirs.putBlob({ name: "sha256-squatted" }, new Uint8Array([1]))).rejects.toThrow();
    await expect(theirs.delete(objectNames.poolChunk("trust-pool", 0))).rejects.toThrow();
    const reader = (await PoolReader.open(await openBlobs(alice), "trust-pool", { sha256: pool.sha256 }))!;
    expect((await reader.slice(0, 10)).map((p) => p.promptId)).toEqual(prompts(10).map((p) => p.promptId));
  });

  it("weights whose bytes differ from the model record's digest are refused by the loader", async () => {
    const object = objectNames.model(EXP, "alice", "v3");
    const weights = new Uint8Array(1000).fill(3);
    const stored = await putWeights(alice, { experiment: EXP, peer: "alice", object, description: "alice" }, weights);
    // Replaced under the same name (here with the owner's own key: nobody else's can).
    await (await openBlobs(alice, stored.bucket)).putBlob({ name: object }, new Uint8Array(1000).fill(4));
    const refused = await readWeights(alice, record(stored, weights.length)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WeightsDigestError);
    expect((refused as Error).message).toContain("refusing alice's weights");
  });

  it("a pool whose index or chunk differs from the pinned digest is refused", async () => {
    const blobs = await openBlobs(coordinator);
    const pool = await storePool(blobs, { name: "pinned", experiment: EXP }, prompts(5000));
    expect(pool.chunks).toBe(2);
    // A chunk rewritten (by a coordinator key: no member's can): the read of that chunk is refused.
    const other = await storePool(
      undefined,
      { name: "pinned", experiment: EXP },
      prompts(5000).map((p) => ({ ...p, question: "evil" })),
    );
    expect(other.sha256).not.toBe(pool.sha256);
    const evil = await storePool(
      blobs,
      { name: "evil", experiment: EXP },
      prompts(5000).map((p) => ({ ...p, question: "evil" })),
    );
    expect(evil.chunks).toBe(2);
    await blobs.putBlob({ name: objectNames.poolChunk("pinned", 1) }, (await blobs.getBlob(objectNames.poolChunk("evil", 1)))!);
    const reader = (await PoolReader.open(blobs, "pinned", { sha256: pool.sha256 }))!;
    expect((await reader.slice(0, 2)).length).toBe(2);
    await expect(reader.slice(4500, 4501)).rejects.toBeInstanceOf(PoolDigestError);
    // The index replaced: refused at open.
    await blobs.putBlob({ name: objectNames.pool("pinned") }, (await blobs.getBlob(objectNames.pool("evil")))!);
    await expect(PoolReader.open(blobs, "pinned", { sha256: pool.sha256 })).rejects.toBeInstanceOf(PoolDigestError);
  });

  it("a member over its weights share is refused by the server with a named error; the others keep theirs", async () => {
    const object = objectNames.model(EXP, "bob", "big");
    const refused = await putWeights(bob, { experiment: EXP, peer: "bob", object, description: "bob" }, new Uint8Array(4 * SMALL)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LimitExceededError);
    expect((refused as Error).message).toMatch(/weights bucket .*bob.* limit/);
    // Alice's share is her own.
    const fine = await putWeights(
      alice,
      { experiment: EXP, peer: "alice", object: objectNames.model(EXP, "alice", "v4"), description: "a" },
      new Uint8Array(4 * SMALL),
    );
    expect(fine.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
