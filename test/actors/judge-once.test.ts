import { describe, expect, it } from "vitest";
import { judgeOnce } from "../../actors/models/judge-once.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";

describe("judging each distinct candidate once", () => {
  it("asks the model once per (prompt, answer) and gives every repeat the same scores as a direct call", async () => {
    const model = await TinyBackend.create(11);
    const [p, q] = poolPrompts(3, 0, 2);
    const items = [
      { prompt: p!, answer: "red" },
      { prompt: p!, answer: "red" },
      { prompt: q!, answer: "red" },
      { prompt: p!, answer: "blue" },
      { prompt: q!, answer: "red" },
    ];
    const asked: number[] = [];
    const counting = { judge: (xs: typeof items) => (asked.push(xs.length), model.judge(xs)) };
    const scores = await judgeOnce(counting, items);
    expect(asked).toEqual([3]);
    const direct = await model.judge(items);
    expect(scores).toHaveLength(items.length);
    const likert = (j: (typeof scores)[number]) => {
      if (!("likert" in j)) throw new Error(`the tiny judge abstained: ${j.abstained}`);
      return j.likert;
    };
    scores.forEach((s, i) => {
      for (const [k, v] of Object.entries(likert(direct[i]!))) expect(likert(s)[k as keyof ReturnType<typeof likert>]).toBeCloseTo(v, 4);
    });
    // different prompts with the same answer are judged apart
    expect(scores[0]).not.toEqual(scores[2]);
    await model.dispose();
  });

  it("refuses a judge that returns the wrong number of scores", async () => {
    const [p] = poolPrompts(3, 0, 1);
    const short = { judge: async () => [] };
    await expect(
      judgeOnce(short, [
        { prompt: p!, answer: "a" },
        { prompt: p!, answer: "b" },
      ]),
    ).rejects.toThrow(/returned 0 scores for 2/);
  });
});
