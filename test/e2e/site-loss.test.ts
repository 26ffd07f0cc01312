/**
 * Losing a whole site (issue #28), the chaos run's site-loss fault at one fixed seed: three sites
 * on loopback (`pop site --layout cluster`, one node and one peer each), the coordinator's leader
 * at site a and a standby at b. Mid-iteration 1 site a dies whole (its node, its peer and the
 * leading coordinator, SIGKILL); its node and peer come back 20 s later. The checks are the chaos
 * run's (test/chaos/checks.ts, sites.ts): the experiment finishes, every prompt has exactly one
 * pair per iteration, no verdict is stored twice, every pair is what the stored messages vote, nothing a stale leader published counts, the
 * standby took over, and the lost peer left by heartbeat, rejoined and trained on both iterations.
 */
import { describe, expect, it } from "vitest";
import { runOnce } from "../chaos/chaos.ts";

/** Its fault comes 1.7 s into iteration 1 and lasts 20.1 s, the shortest the fault allows. */
const SEED = 52;

describe("losing a whole site", () => {
  it("the standby takes over, the lost peer leaves and rejoins, and the run ends with every pair once", async () => {
    const result = await runOnce("site-loss", SEED);
    console.log(
      `site-loss seed ${SEED}: ${result.notes[0] ?? ""}; took over after ${result.takeoverMs} ms, lost ${result.lostMs} ms, ${Math.round(result.ms / 1000)} s in all`,
    );
    expect(result.broke, result.notes.join("\n")).toEqual([]);
    expect(result.takeoverMs).toBeDefined();
  }, 420_000);
});
