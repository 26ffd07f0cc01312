/** The coordinator's per-prompt bits (voted, published): a count that follows sets and clears, nothing outside its size. */
import { describe, expect, it } from "vitest";
import { Bitset } from "../../protocol/mod.ts";

describe("Bitset", () => {
  it("sets, clears and counts positions, once each", () => {
    const b = new Bitset(1_000_001);
    for (const at of [0, 7, 8, 999_999, 1_000_000, 7]) b.set(at);
    expect(b.count).toBe(5);
    expect([b.has(0), b.has(1), b.has(7), b.has(8), b.has(1_000_000)]).toEqual([true, false, true, true, true]);
    b.set(7, false);
    b.set(7, false);
    expect([b.has(7), b.count]).toEqual([false, 4]);
    b.clear();
    expect([b.has(0), b.count]).toEqual([false, 0]);
  });

  it("ignores positions outside its size", () => {
    const b = new Bitset(10);
    b.set(-1);
    b.set(10);
    expect([b.has(-1), b.has(10), b.count]).toEqual([false, false, 0]);
  });
});
