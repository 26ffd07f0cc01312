import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it, vi } from "vitest";
import { Flags, UsageError } from "../../deploy/cli/args.ts";
import { compareHelp, runCompare } from "../../deploy/cli/commands/compare.ts";
import { buildReport } from "../../deploy/observe/report/report.ts";
import { launchChromium } from "../support/browser.ts";
import { storedRun } from "../support/stored-run.ts";

const dir = mkdtempSync(join(tmpdir(), "pop-compare-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run A: a current report.json in a run folder. Run B: the same shape written as a v1 report (positional curves, no provenance). */
function fixtures(): { a: string; b: string } {
  const a = join(dir, "run-a");
  const b = join(dir, "run-b");
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(join(a, "report.json"), JSON.stringify(buildReport(storedRun("exp-a", 1))));
  const { schemaVersion: _, commit: _c, date: _d, versions: _v, timeline: _t, ...v2 } = buildReport(storedRun("exp-b", 2));
  const v1 = { ...v2, training: v2.training!.map((r) => ({ ...r, curve: r.curve!.map((p) => [p.step, p.loss, p.margin]) })) };
  writeFileSync(join(b, "report.json"), JSON.stringify(v1));
  return { a, b: join(b, "report.json") };
}

async function compare(argv: string[]): Promise<string> {
  let printed = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => {
    printed += String(s);
    return true;
  });
  try {
    await runCompare(new Flags(argv, compareHelp, { positionals: true }));
  } finally {
    spy.mockRestore();
  }
  return printed;
}

describe("pop compare", () => {
  it("prints each run's scores per iteration, gains, pairs and time, and writes compare.html that opens without errors", async () => {
    const { a, b } = fixtures();
    const out = join(dir, "cmp.html");
    const table = await compare([a, b, "--out", out]);
    // One summary line per run: panel average first and last, gain, wall time (run A's stored timeline: 15 s).
    expect(table).toMatch(/^run\s+experiment\s+members\s+iterations\s+panel first\s+panel last\s+gain\s+pairs\s+wall s\s+training s\s+commit\s+date$/m);
    expect(table).toMatch(/^run-a\s+exp-a\s+2\s+3\s+51\.2\s+66\.3\s+\+15\.0\s+0\s+15\.0\s+6\.0\s/m);
    expect(table).toMatch(/^run-b\s+exp-b\s+2\s+3\s+51\.2\s+81\.3\s+\+30\.0\s+0\s+-\s+6\.0\s+-\s+-$/m);
    // Each run's members per iteration with their gain.
    expect(table).toMatch(
      /run-a \(exp-a\): average accuracy \(%\) per iteration\n\s+member\s+iter 0\s+iter 1\s+iter 2\s+gain\n\s+a\s+50\.0\s+57\.5\s+65\.0\s+\+15\.0/,
    );
    expect(table).toMatch(/run-b \(exp-b\)[\s\S]*panel average\s+51\.2\s+66\.3\s+81\.3\s+\+30\.0/);
    expect(table).toContain(`wrote ${out}`);

    const html = readFileSync(out, "utf8");
    expect(html).not.toMatch(/<script|https?:\/\//);
    expect(html).toContain('aria-label="Panel average per run"');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(pathToFileURL(out).href);
      expect(await page.locator("section.run h2").allTextContents()).toEqual(["run-a", "run-b"]);
      expect(await page.locator('svg[aria-label="Training loss"]').count()).toBe(2);
      expect(await page.locator('svg[aria-label="Average accuracy"]').count()).toBe(2);
      expect(await page.locator("#table").textContent()).toContain("run-b");
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("needs a run and refuses options it does not know", async () => {
    await expect(compare(["--out", join(dir, "x.html")])).rejects.toThrow(UsageError);
    expect(() => new Flags(["a", "--bogus"], compareHelp, { positionals: true })).toThrow(/unknown option: --bogus/);
    expect(() => new Flags(["a"], compareHelp)).toThrow(/unexpected argument 'a'/);
  });
});
