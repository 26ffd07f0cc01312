/**
 * The short, fixed-seed version of `npm run chaos`: a coordinator and an actor SIGKILLed and
 * restarted at seeded moments of a run; the run must finish with every pair once, no verdict
 * twice and every member trained once per iteration (test/chaos/chaos.ts checks them).
 */
import { describe, expect, it } from "vitest";
import { runOnce } from "../chaos/chaos.ts";

describe("chaos, fixed seeds", () => {
  for (const [fault, seed] of [
    ["coordinator", 4242],
    ["actor", 4243],
  ] as const) {
    it(`survives SIGKILL of the ${fault} (seed ${seed})`, async () => {
      const result = await runOnce(fault, seed);
      expect(result.broke, result.notes.join("\n")).toEqual([]);
    }, 360_000);
  }
});
