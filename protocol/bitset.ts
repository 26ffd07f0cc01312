/**
 * A fixed set of positions 0 .. size−1, one bit each: what the coordinator and catch-up keep per prompt of an
 * iteration (voted, published), 125 KB at a million prompts where a set of ids was ~100 MB.
 */
export class Bitset {
  private readonly bits: Uint8Array;
  private total = 0;

  constructor(readonly size: number) {
    this.bits = new Uint8Array(Math.ceil(size / 8));
  }

  /** How many positions are set. */
  get count(): number {
    return this.total;
  }

  /** Whether `at` is set; false outside 0 .. size−1. */
  has(at: number): boolean {
    if (at < 0 || at >= this.size) return false;
    return (this.bits[at >> 3]! & (1 << (at & 7))) !== 0;
  }

  /** Sets or clears `at` (ignored outside 0 .. size−1). */
  set(at: number, on = true): void {
    if (at < 0 || at >= this.size || this.has(at) === on) return;
    this.bits[at >> 3]! ^= 1 << (at & 7);
    this.total += on ? 1 : -1;
  }

  /** Clears every position. */
  clear(): void {
    this.bits.fill(0);
    this.total = 0;
  }
}
