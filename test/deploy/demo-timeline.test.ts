import { describe, expect, it } from "vitest";
import { RunTimeline, formatTimeline } from "../../deploy/observe/timeline.ts";

describe("the demo's time breakdown", () => {
  it("splits each iteration into answering, judging, vote wait, training and evaluation", () => {
    const t = new RunTimeline();
    t.evaluated(0, "a", 3_000);
    t.evaluated(0, "b", 4_000);
    t.iterationOpened(1, 6_000);
    t.candidate(1, 9_000);
    t.candidate(1, 8_000);
    t.verdict(1, 12_000);
    t.iterationClosed(1, 12_500);
    // each member trains, evaluates, then says it is done
    t.evaluated(1, "b", 3_000);
    t.trained(1, "b", 30_000, 13_000);
    t.evaluated(1, "a", 2_000);
    t.trained(1, "a", 22_000, 7_000);
    t.iterationOpened(2, 31_000);
    const [zero, one, two] = t.timings();
    expect(zero).toMatchObject({ iteration: 0, evaluation: 4_000 });
    // training: closed -> b's training_done, less b's evaluation
    expect(one).toEqual({
      iteration: 1,
      openedAt: 6_000,
      answering: 3_000,
      collecting: 6_000,
      lastVerdictAt: 12_000,
      voteWait: 500,
      training: 14_500,
      trainingByPeer: { a: 7_000, b: 13_000 },
      evaluation: 3_000,
    });
    // an iteration still running shows what it has
    expect(two).toMatchObject({ iteration: 2, answering: undefined, training: undefined, evaluation: undefined });
    const text = formatTimeline(t.timings(), 40_000);
    expect(text).toContain("a 7.0, b 13.0");
    expect(text).toMatch(/answering \+ judging 15%, vote wait 1%, training 36%, evaluation 18%, the rest \(start-up, pool, report\) 30%/);
  });
});
