/**
 * `npm run bench:cost` (deploy/bench/cost.ts) at its smallest size against real processes (a
 * nats-server, one pop serve): the JSON's shape, and the members' own count of judge requests
 * against what the formula says. The tiny models repeat answers, and a repeated text is judged
 * once, so the measured count equals the formula applied to the distinct answers, at most m·k.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { expectedRequests, formulaRequests } from "../../deploy/bench/cost/formula.ts";
import * as msg from "../support/messages.ts";
import { removeScratch, scratchDir } from "../support/scratch.ts";

const BENCH = fileURLToPath(new URL("../../deploy/bench/cost.ts", import.meta.url));

describe("bench:cost's formula", () => {
  it("counts m·k judge requests per prompt per member when every answer is distinct, 5× per criterion", () => {
    const panel = ["ann", "ben", "cat", "dan", "eve"];
    const k = 3;
    const batches = ["q1", "q2", "q3"].flatMap((promptId) =>
      panel.map((author) => msg.candidates({ promptId, author, texts: Array.from({ length: k }, (_, i) => `${author} ${promptId} ${i}`) })),
    );
    const experiment = batches[0]!.experiment;
    for (const mode of ["single", "per-criterion"] as const)
      for (const m of [1, 2, 3, "all"] as const) {
        const judging = { mode, judgesPerAuthor: m, criteria: undefined } as never;
        expect(expectedRequests({ experiment, judging }, 1, panel, batches)).toBe(formulaRequests(panel.length, k, mode, m));
      }
    expect(formulaRequests(5, 3, "single", "all")).toBe(12);
    expect(formulaRequests(5, 3, "per-criterion", 2)).toBe(30);
    // Repeated texts of a prompt are judged once.
    const same = panel.map((author) => msg.candidates({ promptId: "q1", author, texts: ["red", "red", "blue"] }));
    expect(expectedRequests({ experiment, judging: { mode: "single", judgesPerAuthor: "all" } as never }, 1, panel, same)).toBe(2);
  });
});

describe("npm run bench:cost", () => {
  it("measures judge requests with real actors against pop serve and writes the rows as JSON", () => {
    const dir = scratchDir("pop-bench-cost-");
    try {
      const out = join(dir, "cost.json");
      const args = ["--peers", "3", "--k", "2", "--prompts", "2", "--modes", "single", "--m", "all", "--pairs-prompts", "0", "--results", "none", "--out", out];
      execFileSync(process.execPath, ["--import", "tsx", BENCH, ...args], { encoding: "utf8", timeout: 240_000, stdio: ["ignore", "pipe", "pipe"] });
      const { rows } = JSON.parse(readFileSync(out, "utf8")) as { rows: Record<string, unknown>[] };
      expect(rows).toHaveLength(1);
      const row = rows[0]!;
      expect(row).toMatchObject({
        peers: 3,
        k: 2,
        mode: "single",
        judgesPerAuthor: "all",
        default: true,
        pairsKept: null,
        source: "measured",
        formulaRequests: 4,
      });
      for (const key of ["judgeRequestsPerPromptPerMember", "promptTokensPerPromptPerMember", "generatedTokensPerPromptPerMember", "expectedRequests"])
        expect(typeof row[key], key).toBe("number");
      // m = N − 1 = 2 judges per author, k = 2: at most 4 requests per prompt per member, exactly one per distinct answer judged.
      expect(row.judgeRequestsPerPromptPerMember).toBeGreaterThan(0);
      expect(row.judgeRequestsPerPromptPerMember).toBeCloseTo(row.expectedRequests as number, 9);
      expect(row.judgeRequestsPerPromptPerMember).toBeLessThanOrEqual(4);
      expect(row.promptTokensPerPromptPerMember).toBeGreaterThan(0);
    } finally {
      removeScratch(dir);
    }
  }, 300_000);
});
