/**
 * The prompts a calibration asks about: the user's own (a `pop pool --from` JSONL file, so
 * image sizes and question lengths are the run's) or, without one, the tiny world's generated
 * image+question prompts.
 */
import { readImageBytes, readPromptFile } from "../pool-file.ts";
import { poolPrompts } from "../../../actors/models/tiny/world.ts";
import type { PromptInput } from "../../../actors/models/contract.ts";

/** `count` prompts from `file` (its first ones, repeated if it holds fewer) or generated ones. */
export async function samplePrompts(count: number, file?: string): Promise<PromptInput[]> {
  if (!file) return poolPrompts(1, 0, count);
  const read = await readPromptFile(file);
  if (read.prompts.length === 0) throw new Error(`--prompts ${file} holds no prompts`);
  const chosen = Array.from({ length: count }, (_, i) => read.prompts[i % read.prompts.length]!);
  return Promise.all(
    chosen.map(async (p, i) => ({
      // Repeats get ids of their own: the backend seeds each prompt by its id.
      id: i < read.prompts.length ? p.promptId : `${p.promptId}#${i}`,
      question: p.question,
      images: await Promise.all(p.images.map(async (img) => ({ format: img.format, width: img.width, height: img.height, data: await readImageBytes(img) }))),
    })),
  );
}
