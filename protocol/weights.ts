/**
 * A peer's weights in the object store. Each peer writes them to its own bucket
 * (topology.ts `weightsBucket`), which only its key may write, and records their sha256 in its
 * model record, which only its key may write: every loader checks the bytes against that digest
 * and refuses what differs, so nobody else's bytes are ever loaded as a peer's weights.
 */
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { BlobError, openBlobs } from "./blobs.ts";
import { PopError, isPermissionViolation } from "./errors.ts";
import { asLimitError, type Limits } from "./limits.ts";
import type { ModelRecord } from "./schemas.ts";
import { OBJECT_STORE, ensureWeightsBucket, weightsBucket } from "./topology.ts";

/** Weights whose bytes do not match the digest their model record gives: never loaded. */
export class WeightsDigestError extends PopError {}

/** The lower-case hex sha256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Where stored weights are and what they hash to, for the model record. */
export interface StoredWeights {
  bucket: string;
  object: string;
  sha256: string;
}

/**
 * Stores a peer's weights under `object` in its own bucket. The bucket is the coordinator's to
 * create (with the peer's limit); on a server without credentials the peer creates it itself.
 * A bucket at its limit is refused by the server: a {@link LimitExceededError}.
 */
export async function putWeights(
  nc: NatsConnection,
  at: { experiment: string; peer: string; object: string; description: string },
  weights: Uint8Array,
  limits?: Limits,
): Promise<StoredWeights> {
  const bucket = weightsBucket(at.experiment, at.peer);
  let store;
  try {
    store = await openBlobs(nc, bucket);
  } catch (error) {
    if (!/not found/i.test((error as Error).message ?? "")) throw error;
    try {
      await ensureWeightsBucket(nc, at.experiment, at.peer, limits);
    } catch (createError) {
      if (!isPermissionViolation(createError)) throw createError;
      throw new PopError(
        `${at.peer}'s weights bucket ${bucket} does not exist yet and its key may not create it: the coordinator creates it once it sees this member`,
        {
          cause: createError,
          retryable: true,
        },
      );
    }
    store = await openBlobs(nc, bucket);
  }
  try {
    await store.putBlob({ name: at.object, description: at.description }, weights);
  } catch (error) {
    throw asLimitError(error, `${at.peer}'s weights (${weights.length} bytes)`, `its weights bucket ${bucket} (limits.weightsBytes)`);
  }
  return { bucket, object: at.object, sha256: sha256Hex(weights) };
}

/** What {@link readWeights} read: the bytes, and whether a digest vouched for them. */
export interface LoadedWeights {
  bytes: Uint8Array;
  /** False only for records written before weights had owners (no digest to check). */
  verified: boolean;
}

/**
 * The weights a model record names, checked against its digest: undefined when the object is
 * missing, a {@link WeightsDigestError} when the bytes differ from what the record says.
 */
export async function readWeights(nc: NatsConnection, record: ModelRecord): Promise<LoadedWeights | undefined> {
  const bucket = record.bucket ?? OBJECT_STORE;
  let store;
  try {
    store = await openBlobs(nc, bucket);
  } catch (error) {
    if (/not found/i.test((error as Error).message ?? "")) return undefined;
    throw error;
  }
  let bytes: Uint8Array | null;
  try {
    bytes = await store.getBlob(record.object);
  } catch (error) {
    // The store's own digest (its metadata's) did not match the chunks: just as untrustworthy.
    if (error instanceof BlobError && !error.retryable) throw new WeightsDigestError(refusal(record, bucket, error.message), { cause: error });
    throw error;
  }
  if (!bytes) return undefined;
  if (record.sha256 === undefined) return { bytes, verified: false };
  const got = sha256Hex(bytes);
  if (got !== record.sha256) throw new WeightsDigestError(refusal(record, bucket, `its bytes hash to ${got}, the model record says ${record.sha256}`));
  if (bytes.length !== record.bytes)
    throw new WeightsDigestError(refusal(record, bucket, `it has ${bytes.length} bytes, the model record says ${record.bytes}`));
  return { bytes, verified: true };
}

function refusal(record: ModelRecord, bucket: string, why: string): string {
  return `refusing ${record.peer}'s weights for iteration ${record.iteration} (${bucket}/${record.object}): ${why}; they were not written by ${record.peer}'s training, so they are not loaded`;
}
