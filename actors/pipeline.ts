/**
 * A bound on model calls in flight. A model server batches whatever is in flight; with one call
 * at a time its batch slots idle while the last answers are published and the next batch is
 * fetched. With two, the next call is already queued at the server when one ends. The inbox
 * handler waits for a place, which stops its deliveries (backpressure) rather than piling up work.
 */
export class Pipeline {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly depth: number) {}

  /** Waits for a place, then starts `work`; resolves once it has started, with its result still to come. */
  async start<T>(work: () => Promise<T>): Promise<{ result: Promise<T> }> {
    while (this.running >= this.depth) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    const result = work();
    const done = () => {
      this.running--;
      this.waiting.shift()?.();
    };
    result.then(done, done);
    return { result };
  }
}

/** Model calls in flight per kind of work (answering, judging) in one actor. */
export const PIPELINE_DEPTH = 2;
