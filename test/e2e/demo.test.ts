import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { Report } from "../../deploy/report/report.ts";

const CLI = fileURLToPath(new URL("../../deploy/cli.ts", import.meta.url));
/** A smaller version of the main job: fewer iterations and prompts than `npm run demo`. */
const ITERATIONS = 2;
const PROMPTS = 800;

describe("pop demo (the main job, smaller)", () => {
  const out = mkdtempSync(join(tmpdir(), "pop-demo-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("runs the shipped panel in separate processes and the panel improves", () => {
    const run = spawnSync(process.execPath, ["--import", "tsx", CLI, "demo", "--out", out, "--iterations", String(ITERATIONS), "--prompts", String(PROMPTS), "--timeout-min", "8"], {
      encoding: "utf8",
      timeout: 9 * 60_000,
    });
    expect(run.status, `demo failed:\n${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/panel average/);
    // where the time went, per iteration
    expect(run.stdout).toMatch(/where the time went/);
    expect(run.stdout).toMatch(/^2 +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d +countless \d+\.\d, lostspace \d+\.\d, ocrdumb \d+\.\d$/m);
    // The table, for whoever reads the test log.
    console.log(run.stdout.slice(run.stdout.indexOf("member ")));
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as Report;
    expect(report.iterations.map((i) => i.iteration)).toEqual([0, 1, 2]);
    expect(report.peers).toEqual(expect.arrayContaining(["ocrdumb"]));
    const first = report.iterations[0]!;
    const last = report.iterations[ITERATIONS]!;
    for (const it of report.iterations.slice(1)) expect(it.pairs).toBeGreaterThan(0);
    // The method's effect, on a smaller run than the demo's three iterations.
    expect(last.panelAverage - first.panelAverage).toBeGreaterThan(0.03);
    // No member may lose ground (a little noise allowed: batches, and so samples, vary run to run).
    for (const peer of report.peers) expect(last.average[peer]!).toBeGreaterThan(first.average[peer]! - 0.02);
    expect(last.scores.ocrdumb!.ocr! - first.scores.ocrdumb!.ocr!).toBeGreaterThan(0.15);
    // The other outputs are there and well-formed.
    expect(existsSync(join(out, "report.html"))).toBe(true);
    for (let i = 1; i <= ITERATIONS; i++) {
      const lines = readFileSync(join(out, `pairs-iter${i}.jsonl`), "utf8").trim().split("\n");
      expect(lines.length).toBe(report.iterations[i]!.pairs);
      const rec = JSON.parse(lines[0]!);
      expect(rec).toMatchObject({ prompt: expect.any(Array), chosen: expect.any(Array), rejected: expect.any(Array), images: expect.any(Array) });
      expect(existsSync(join(out, rec.images[0]))).toBe(true);
    }
    expect(readdirSync(join(out, "logs")).sort()).toEqual(expect.arrayContaining(["coordinator.log", "ocrdumb.log"]));
  }, 10 * 60_000);
});
