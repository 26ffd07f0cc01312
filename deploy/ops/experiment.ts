/**
 * Experiment set-up from the deploy side: the default experiment config for the embedded tiny
 * panel, and loading the tiny world's unlabeled prompt pool into the object store.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BUCKETS,
  ExperimentConfig,
  POOL_CHUNK_PROMPTS,
  PROTOCOL_VERSION,
  PoolReader,
  encode,
  readRecord,
  openBlobs,
  putImage,
  stateKeys,
  storePool,
  type PoolPrompt,
  kvmOf,
} from "../../protocol/mod.ts";
import { z } from "zod";
import { poolPrompts } from "../../actors/models/tiny/world.ts";

/** Settings of the demo experiment; every field can be overridden from the command line. */
export interface DemoSettings {
  experiment: string;
  iterations: number;
  promptsPerIteration: number;
  k: number;
  temperature: number;
  poolSeed: number;
  minPeers: number;
}

export function experimentConfig(
  s: DemoSettings,
  overrides: Partial<
    Pick<ExperimentConfig, "voting" | "training" | "deadlines" | "heartbeat" | "coordination" | "openPrompts"> & {
      judging: Partial<ExperimentConfig["judging"]>;
    }
  > = {},
): ExperimentConfig {
  return ExperimentConfig.parse({
    v: PROTOCOL_VERSION,
    type: "experiment",
    experiment: s.experiment,
    createdAt: Date.now(),
    iterations: s.iterations,
    promptsPerIteration: s.promptsPerIteration,
    pool: { name: poolName(s.poolSeed), offset: 0 },
    minPeers: s.minPeers,
    sampling: { k: s.k, temperature: s.temperature },
    voting: overrides.voting ?? {},
    judging: overrides.judging ?? {},
    training: overrides.training ?? {},
    deadlines: overrides.deadlines ?? {},
    heartbeat: overrides.heartbeat ?? {},
    coordination: overrides.coordination ?? {},
    openPrompts: overrides.openPrompts,
  });
}

export const poolName = (seed: number) => `tiny-world-${seed}`;

/** Images stored at once while a pool loads. */
const POOL_PUTS_IN_FLIGHT = 16;

/** A stored pool: its name and size. */
export interface PoolSummary {
  name: string;
  count: number;
}

/**
 * Puts `count` prompts of the tiny world's pool (images and questions) into the object store,
 * once, as a chunked pool: generated, stored and let go a chunk's worth at a time, so that a pool
 * of a million prompts never sits in memory.
 */
export async function loadTinyPool(
  nc: NatsConnection,
  seed: number,
  count: number,
  experiment: string,
  onProgress?: (done: number, total: number) => void,
): Promise<PoolSummary> {
  const blobs = await openBlobs(nc);
  const name = poolName(seed);
  const existing = await PoolReader.open(blobs, name);
  // One stored before its chunks had digests is stored again, so that it can be pinned.
  if (existing && existing.count >= count && existing.verifiable) {
    onProgress?.(count, count);
    return { name, count: existing.count };
  }
  let stored = 0;
  async function* prompts(): AsyncGenerator<PoolPrompt> {
    for (let start = 0; start < count; start += POOL_CHUNK_PROMPTS) {
      const items = poolPrompts(seed, start, Math.min(POOL_CHUNK_PROMPTS, count - start));
      const window: PoolPrompt[] = new Array(items.length);
      // Several puts in flight: one at a time, each waited for its ack, was most of the demo's start.
      let next = 0;
      await Promise.all(
        Array.from({ length: POOL_PUTS_IN_FLIGHT }, async () => {
          for (let i = next++; i < items.length; i = next++) {
            const p = items[i]!;
            const images = [];
            for (const img of p.images) images.push(await putImage(blobs, img));
            window[i] = { promptId: p.id, question: p.question, images };
            onProgress?.(++stored, count);
          }
        }),
      );
      yield* window;
    }
  }
  await storePool(blobs, { name, experiment, description: `tiny world pool, seed ${seed}` }, prompts());
  return { name, count };
}

/** Stores the experiment's config unless one exists; returns the stored one. */
export async function createExperiment(nc: NatsConnection, config: ExperimentConfig): Promise<{ config: ExperimentConfig; created: boolean }> {
  const kv = await kvmOf(nc).open(BUCKETS.state);
  const key = stateKeys.config(config.experiment);
  const stored = await readRecord(kv, key, "experiment");
  if (stored) return { config: stored, created: false };
  await kv.create(key, encode(config));
  return { config, created: true };
}

/**
 * Keys of a user's experiment config that the schema does not know, as dotted paths (e.g.
 * `training.learningrate`): a misspelt setting must be an error, not silently left at its default.
 */
export function unknownConfigKeys(raw: unknown, schema: z.ZodType = ExperimentConfig, path: string[] = []): string[] {
  let s: unknown = schema;
  // Look through .default()/.optional() wrappers to the object inside.
  while (s && !(s instanceof z.ZodObject) && (s as { _zod?: { def?: { innerType?: unknown } } })._zod?.def?.innerType) {
    s = (s as { _zod: { def: { innerType: unknown } } })._zod.def.innerType;
  }
  if (!(s instanceof z.ZodObject) || typeof raw !== "object" || raw === null || Array.isArray(raw)) return [];
  const shape = s.shape as Record<string, z.ZodType>;
  return Object.entries(raw).flatMap(([k, v]) => (k in shape ? unknownConfigKeys(v, shape[k]!, [...path, k]) : [[...path, k].join(".")]));
}
