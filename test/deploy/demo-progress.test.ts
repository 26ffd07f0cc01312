/** The demo's progress lines: paste-ready watch commands, and totals and time to go counted as pop watch counts. */
import { describe, expect, it } from "vitest";
import { iterationLine, shellWord, watchCommands } from "../../deploy/demo/progress.ts";
import { judgementsIn, WatchState } from "../../deploy/observe/watch/state.ts";
import type { MessageOf } from "../../protocol/mod.ts";

describe("demo progress", () => {
  it("prints whole pop watch and pop dashboard commands, quoted where needed", () => {
    expect(watchCommands("nats://127.0.0.1:4333", "/tmp/out dir/creds/observer.nk", "demo")).toEqual([
      "pop watch --server nats://127.0.0.1:4333 --nkey '/tmp/out dir/creds/observer.nk' --experiment demo",
      "pop dashboard --server nats://127.0.0.1:4333 --nkey '/tmp/out dir/creds/observer.nk' --experiment demo",
    ]);
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
  });

  it("shows an iteration's answers and judgements against their totals, with the time to go", () => {
    const it3 = { iteration: 2, prompts: 100, peers: ["a", "b", "c"], openedAt: 0 };
    // 3 peers x 100 prompts answers; each author judged by the 2 others: 600 judgements.
    expect(iterationLine(it3, { candidates: 150, judgements: 300, pairs: 4 }, "all", 60_000)).toBe(
      "  iteration 2: answers 150 of 300, judgements 300 of 600, 4 pairs, about 1 min 00 s to go",
    );
    expect(iterationLine(it3, { candidates: 0, judgements: 0, pairs: 0 }, 1, 1000)).toBe("  iteration 2: answers 0 of 300, judgements 0 of 300, 0 pairs");
  });

  it("counts judgements as pop watch does: one per author a verdict covers", () => {
    const verdict = { type: "verdict", iteration: 1, judge: "a", authors: ["b", "c"], createdAt: 0 } as unknown as MessageOf<"verdict">;
    expect(judgementsIn(verdict)).toBe(2);
    const w = new WatchState("x");
    w.add(verdict, 0);
    expect(w.iterations.get(1)?.verdicts).toBe(judgementsIn(verdict));
  });
});
