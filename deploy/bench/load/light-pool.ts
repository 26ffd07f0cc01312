/**
 * A pool for the memory benchmark that a million prompts can fill in a minute: prompt i asks
 * the tiny world's question i mod `distinct` about its image, so only `distinct` images are
 * rendered and stored, while every prompt has an id of its own. The plane's load (messages,
 * votes, windows) is that of any pool; the members' image caches stay small.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { openBlobs, putImage, storePool, type ImageRef, type PoolPrompt } from "../../../protocol/mod.ts";
import { poolPrompts } from "../../../actors/models/tiny/world.ts";

/** Stores the pool (once per name) and returns its name. */
export async function loadLightPool(nc: NatsConnection, seed: number, count: number, distinct: number, experiment: string): Promise<string> {
  const blobs = await openBlobs(nc);
  const name = `bench-light-${seed}-${distinct}-${count}`;
  const base: { question: string; images: ImageRef[] }[] = [];
  for (const p of poolPrompts(seed, 0, Math.min(distinct, count))) {
    const images: ImageRef[] = [];
    for (const img of p.images) images.push(await putImage(blobs, img));
    base.push({ question: p.question, images });
  }
  function* prompts(): Generator<PoolPrompt> {
    for (let i = 0; i < count; i++) yield { promptId: `${name}-${i}`, ...base[i % base.length]! };
  }
  await storePool(blobs, { name, experiment, description: `benchmark pool: ${count} prompts over ${distinct} tiny-world images` }, prompts());
  return name;
}
