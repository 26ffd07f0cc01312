/** The judge assignment (protocol/judges.ts): deterministic, balanced, never the author, all when m covers the panel. */
import { describe, expect, it } from "vitest";
import { JudgeAssignment, assignedJudges } from "../../protocol/mod.ts";

const panelOf = (n: number) => Array.from({ length: n }, (_, i) => `m${String(i).padStart(2, "0")}`);
const promptIds = (n: number) => Array.from({ length: n }, (_, i) => `prompt-${i}`);

describe("the judge assignment", () => {
  it("is a pure function of experiment, iteration, prompt, author, panel and m", () => {
    const panel = panelOf(7);
    const shuffled = [panel[3]!, panel[0]!, panel[6]!, panel[1]!, panel[5]!, panel[2]!, panel[4]!, panel[0]!];
    for (const promptId of promptIds(50))
      for (const author of panel) {
        const judges = assignedJudges("exp", 2, promptId, author, panel, 3);
        // The panel's order (or a repeat) and a fresh instance change nothing.
        expect(assignedJudges("exp", 2, promptId, author, shuffled, 3)).toEqual(judges);
        expect(new JudgeAssignment("exp", 2, panel, 3).judgesOf(promptId, author)).toEqual(judges);
      }
    // Another iteration or experiment draws another rotation (for some prompts at least).
    const all = (exp: string, it: number) => promptIds(50).map((p) => assignedJudges(exp, it, p, panel[0]!, panel, 3).join());
    expect(all("exp", 3)).not.toEqual(all("exp", 2));
    expect(all("other", 2)).not.toEqual(all("exp", 2));
  });

  it("names m distinct judges, never the author, and agrees with assigned() and authorsOf()", () => {
    const wrong: string[] = []; // one expect at the end: tens of thousands of cases
    for (const n of [2, 3, 4, 7, 16])
      for (let m = 1; m < n; m++) {
        const a = new JudgeAssignment("exp", 1, panelOf(n), m);
        for (const promptId of promptIds(20)) {
          const at = `n=${n} m=${m} ${promptId}`;
          for (const author of a.panel) {
            const judges = a.judgesOf(promptId, author);
            if (judges.length !== m || new Set(judges).size !== m || judges.includes(author)) wrong.push(`${at}: ${author} judged by ${judges.join()}`);
            for (const judge of a.panel) if (a.assigned(promptId, judge, author) !== judges.includes(judge)) wrong.push(`${at}: assigned(${judge}, ${author})`);
          }
          for (const judge of a.panel) {
            const expected = a.panel.filter((author) => a.judgesOf(promptId, author).includes(judge)).join();
            if (a.authorsOf(promptId, judge).join() !== expected) wrong.push(`${at}: authorsOf(${judge})`);
          }
        }
      }
    expect(wrong).toEqual([]);
  });

  it("is balanced: every member judges the same number of authors per prompt, and meets every author about equally often", () => {
    for (const [n, m] of [
      [3, 1],
      [5, 2],
      [8, 3],
      [16, 4],
    ] as const) {
      const a = new JudgeAssignment("exp", 4, panelOf(n), m);
      const prompts = promptIds(600);
      const load = new Map<string, number>();
      const met = new Map<string, number>();
      for (const promptId of prompts)
        for (const author of a.panel)
          for (const judge of a.judgesOf(promptId, author)) {
            load.set(judge, (load.get(judge) ?? 0) + 1);
            met.set(`${judge}|${author}`, (met.get(`${judge}|${author}`) ?? 0) + 1);
          }
      // Exactly m authors per prompt for every judge: within ±1 over any number of prompts.
      const loads = [...load.values()];
      expect(loads).toHaveLength(n);
      expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
      expect(loads[0]).toBe(prompts.length * m);
      for (const promptId of prompts.slice(0, 30)) for (const judge of a.panel) expect(a.authorsOf(promptId, judge)).toHaveLength(m);
      // Each (judge, author) pair about m/(n−1) of the prompts: the seeded rotation spreads them.
      const expected = (prompts.length * m) / (n - 1);
      expect(met.size).toBe(n * (n - 1));
      for (const count of met.values()) expect(Math.abs(count - expected)).toBeLessThan(expected * 0.35);
    }
  });

  it("means every other member when m covers the panel (or is 'all'), and nobody for an author off the panel", () => {
    const panel = panelOf(4);
    for (const m of [3, 4, 100, "all", undefined] as const) {
      const a = new JudgeAssignment("exp", 1, panel, m);
      expect(a.all).toBe(true);
      expect(a.perAuthor).toBe(3);
      for (const author of panel) expect([...a.judgesOf("p", author)].sort()).toEqual(panel.filter((p) => p !== author));
    }
    const a = new JudgeAssignment("exp", 1, panel, 1);
    expect(a.all).toBe(false);
    expect(a.judgesOf("p", "mallory")).toEqual([]);
    expect(a.assigned("p", "mallory", panel[0]!)).toBe(false);
    expect(a.assigned("p", panel[0]!, "mallory")).toBe(false);
    // A panel of one judges nobody; of two, each judges the other.
    expect(new JudgeAssignment("exp", 1, ["solo"], 1).judgesOf("p", "solo")).toEqual([]);
    expect(new JudgeAssignment("exp", 1, ["x", "y"], 1).judgesOf("p", "x")).toEqual(["y"]);
  });
});
