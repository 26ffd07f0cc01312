import { describe, expect, it } from "vitest";
import { RunTimeline, formatTimeline } from "../../deploy/commands/demo-timeline.ts";

describe("the demo's time breakdown", () => {
  it("splits each iteration into answering, judging, vote wait, training and evaluation", () => {
    const t = new RunTimeline(1_000);
    t.evaluated(0, 4_000);
    t.evaluated(0, 5_000);
    t.iterationOpened(1, 6_000);
    t.candidate(1, 9_000);
    t.candidate(1, 8_000);
    t.verdict(1, 12_000);
    t.iterationClosed(1, 12_500);
    t.trained(1, "b", 30_000, 17_000);
    t.trained(1, "a", 22_000, 9_000);
    t.evaluated(1, 33_000);
    t.iterationOpened(2, 31_000);
    const [zero, one, two] = t.timings();
    expect(zero).toMatchObject({ iteration: 0, evaluation: 4_000 });
    expect(one).toEqual({
      iteration: 1, answering: 3_000, collecting: 6_000, voteWait: 500, training: 17_500, trainingByPeer: { a: 9_000, b: 17_000 }, evaluation: 3_000,
    });
    // an iteration still running shows what it has
    expect(two).toMatchObject({ iteration: 2, answering: undefined, training: undefined });
    const text = formatTimeline(t.timings(), 40_000);
    expect(text).toContain("a 9.0, b 17.0");
    expect(text).toMatch(/answering \+ judging 15%, vote wait 1%, training 44%, evaluation 18%, the rest \(start-up, pool, report\) 23%/);
  });
});
