/** Answering: k candidates per prompt of the iterations this peer takes part in. */
import {
  PROTOCOL_VERSION,
  candidateIdFor,
  publishMessage,
  type CandidateBatch,
  type Decided,
  type Delivery,
  type MessageOf,
  type Outcome,
} from "../protocol/mod.ts";
import { seedOf, type PeerContext } from "./context.ts";
import { RoleStoppedError } from "./errors.ts";
import { Pipeline, PIPELINE_DEPTH } from "./pipeline.ts";

/** The answering role of one actor: owns the pipeline of its model calls for answers. */
export class Answering {
  private readonly pipeline = new Pipeline(PIPELINE_DEPTH);
  private stopped = false;

  constructor(private readonly ctx: PeerContext) {}

  /**
   * The prompts inbox's handler: answers the batch without holding the inbox, so the next batch
   * is fetched and queued at the model while this one is generated (at most PIPELINE_DEPTH at
   * once); each delivery's outcome comes when its batch is published.
   */
  async handle(batch: Delivery<MessageOf<"prompt">>[]): Promise<Outcome[]> {
    const prompts = batch.map((d) => d.message);
    const { result } = await this.pipeline.start(() => this.answer(prompts));
    return batch.map((_, i) => ({ later: result.then((outcomes) => outcomes[i]!) }));
  }

  /**
   * Answers the prompts now, outside the pipeline (catch-up's way), and publishes the candidates;
   * resolves with each prompt's outcome once they are published ("ack" also for a prompt of an
   * iteration this peer does not take part in).
   */
  async answer(batch: MessageOf<"prompt">[]): Promise<Decided[]> {
    // Work still waiting for a place when the actor stopped is not started (the inbox handed it back).
    if (this.stopped) throw new RoleStoppedError("answering");
    const ctx = this.ctx;
    const outcomes: Decided[] = batch.map(() => "ack");
    const work: number[] = [];
    for (let i = 0; i < batch.length; i++) {
      if (await ctx.takesPart(batch[i]!.iteration)) work.push(i);
    }
    if (work.length === 0) return outcomes;
    const prompts = await Promise.all(
      work.map((i) => {
        const p = batch[i]!;
        return ctx.promptInput(p.promptId, p.question, p.images);
      }),
    );
    const { k, temperature, maxTokens } = ctx.config.sampling;
    const first = batch[work[0]!]!;
    const seed = seedOf(ctx.experiment, first.iteration, ctx.peer, first.promptId, ctx.modelVersion);
    const t0 = performance.now();
    const answers = await ctx.cost.meter(first.iteration, "answer", () => ctx.backend.generate(prompts, { k, temperature, maxTokens, seed }));
    const ms = performance.now() - t0;
    // Published side by side: one ack round trip for the batch instead of one per prompt.
    const publishing: Promise<unknown>[] = [];
    for (let j = 0; j < work.length; j++) {
      const p = batch[work[j]!]!;
      const texts = answers[j] ?? [];
      if (texts.length === 0) {
        // This prompt alone is set aside (with the reason, in the dead-letter stream); the others go on.
        outcomes[work[j]!] = { dead: `the model gave no answers to prompt ${p.promptId} (see this peer's log for why)` };
        continue;
      }
      const message: CandidateBatch = {
        v: PROTOCOL_VERSION,
        type: "candidates",
        experiment: ctx.experiment,
        iteration: p.iteration,
        promptId: p.promptId,
        question: p.question,
        images: p.images,
        author: ctx.peer,
        modelVersion: ctx.modelVersion,
        sampling: { k, temperature, seed },
        // A model that answers garbage still gets its answer judged; only the size is bounded.
        candidates: texts.slice(0, 64).map((text, i) => ({ candidateId: candidateIdFor(p.promptId, ctx.peer, i), text: text.slice(0, 4096) })),
        createdAt: Date.now(),
      };
      publishing.push(publishMessage(ctx.js, message));
    }
    await Promise.all(publishing);
    ctx.log.debug({ prompts: work.length, k, ms: Math.round(ms) }, "answered prompts");
    return outcomes;
  }

  /** Answers nothing more; calls in flight end on their own (or with the backend). */
  stop(): void {
    this.stopped = true;
  }
}
