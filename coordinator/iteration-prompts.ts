/**
 * An open iteration's prompts, read from its pool a chunk at a time: the record names them as a
 * range of the pool, and nothing holds them all (an iteration can have a million).
 */
import { PROTOCOL_VERSION, type PoolPrompt, type PoolReader, type Prompt, type PromptRange } from "../protocol/mod.ts";

/**
 * Finds an iteration's prompts by id, synchronously, among those loaded: the vote book asks it
 * for each message, after the collector has had the prompt's chunk loaded ({@link prepare}).
 */
export interface PromptLookup {
  /** How many prompts the iteration has. */
  readonly count: number;
  /** The prompt's position in the iteration (0 .. count−1) and the prompt; undefined when not the iteration's (or not loaded). */
  find(promptId: string): { index: number; prompt: Prompt } | undefined;
}

/** {@link PromptLookup} over a pool range. */
export class IterationPrompts implements PromptLookup {
  constructor(
    private readonly reader: PoolReader,
    readonly range: PromptRange,
    private readonly experiment: string,
    private readonly iteration: number,
  ) {}

  get count(): number {
    return this.range.count;
  }

  /** Loads what {@link find} needs to answer for `promptId`. */
  async prepare(promptId: string): Promise<void> {
    await this.reader.prepare(promptId);
  }

  find(promptId: string): { index: number; prompt: Prompt } | undefined {
    const hit = this.reader.cached(promptId);
    if (!hit) return undefined;
    const index = hit.index - this.range.offset;
    if (index < 0 || index >= this.range.count) return undefined;
    return { index, prompt: this.message(hit.prompt) };
  }

  /** The iteration's prompts `start` to `end` (positions in the iteration), as messages. */
  async slice(start: number, end: number): Promise<Prompt[]> {
    const { offset, count } = this.range;
    const prompts = await this.reader.slice(offset + start, offset + Math.min(end, count));
    return prompts.map((p) => this.message(p));
  }

  private message(p: PoolPrompt): Prompt {
    return {
      v: PROTOCOL_VERSION,
      type: "prompt",
      experiment: this.experiment,
      iteration: this.iteration,
      promptId: p.promptId,
      question: p.question,
      images: p.images,
      createdAt: Date.now(),
    };
  }
}

/** A {@link PromptLookup} over a list held in memory (tests, small tools). */
export function listedPrompts(prompts: Prompt[]): PromptLookup {
  const byId = new Map(prompts.map((p, index) => [p.promptId, { index, prompt: p }]));
  return { count: byId.size, find: (id) => byId.get(id) };
}
