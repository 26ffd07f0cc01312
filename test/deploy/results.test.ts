import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ResultsRun, fence, resultsDir } from "../../deploy/observe/results/write.ts";

describe("results files", () => {
  it("writes a dated file headed by commit, date, machine and load, and a -latest copy", () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-results-"));
    const run = new ResultsRun("demo", "npm run demo -- --k 2", dir);
    const file = run.write({ summary: "a summary", settings: { k: 2 }, sections: [{ heading: "Table", markdown: fence("a  b\n1  2\n") }] });
    expect(file).toMatch(/demo-\d{4}-\d\d-\d\dT\d{4}Z\.md$/);
    expect(readdirSync(dir).sort()).toEqual([file!.split("/").pop(), "demo-latest.md"].sort());
    const text = readFileSync(file!, "utf8");
    expect(readFileSync(join(dir, "demo-latest.md"), "utf8")).toBe(text);
    expect(text).toMatch(/^# demo: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n/);
    expect(text).toMatch(/\| commit \| ([0-9a-f]{7,}(\+dirty)?|unknown) \|/);
    expect(text).toMatch(/\| machine \| \d+ x .+ GiB memory .+ Node v\d+/);
    expect(text).toMatch(/\| load \(1 min \/ 5 min\) \| at start \d+\.\d\d \/ \d+\.\d\d, at end \d+\.\d\d \/ \d+\.\d\d \|/);
    expect(text).toContain("| command | `npm run demo -- --k 2` |");
    expect(text).toContain("- k: 2");
    expect(text).toContain("## Table\n\n```\na  b\n1  2\n```");
  });

  it("a second run of the same minute gets a name of its own; the latest copy follows it", () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-results-"));
    const a = new ResultsRun("chaos", "npm run chaos", dir);
    const b = new ResultsRun("chaos", "npm run chaos", dir);
    const fa = a.write({ sections: [{ heading: "A", markdown: "first" }] });
    const fb = b.write({ sections: [{ heading: "B", markdown: "second" }] });
    expect(fa).not.toBe(fb);
    expect(readFileSync(join(dir, "chaos-latest.md"), "utf8")).toContain("second");
  });

  it("none writes nothing: the option, or POP_RESULTS (which the test suite sets)", () => {
    expect(resultsDir("none")).toBeUndefined();
    expect(process.env.POP_RESULTS).toBe("none");
    expect(resultsDir()).toBeUndefined();
    expect(new ResultsRun("demo", "npm run demo").write({ sections: [] })).toBeUndefined();
    expect(resultsDir("/tmp/x")).toBe("/tmp/x");
  });
});
