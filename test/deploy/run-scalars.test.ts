import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildReport } from "../../deploy/observe/report/report.ts";
import { crc32c, maskedCrc32c } from "../../deploy/observe/runs/crc32c.ts";
import { PANEL, type Scalar } from "../../deploy/observe/runs/scalars.ts";
import { writeRunScalars } from "../../deploy/observe/runs/write.ts";
import { storedRun } from "../support/stored-run.ts";

const READER = join(import.meta.dirname, "../support/read_tfevents.py");

interface Record_ {
  wall_time?: number;
  step?: number;
  file_version?: string;
  values?: { tag?: string; simple_value?: number }[];
}

/** The event file of a member, read by the Python reader (its own CRC and protobuf decoding). */
function readBack(dir: string, member: string): Record_[] {
  const files = readdirSync(join(dir, "tensorboard", member));
  expect(files).toHaveLength(1);
  expect(files[0]).toMatch(/^events\.out\.tfevents\.\d+\./);
  const out = execFileSync("/usr/bin/python3", [READER, join(dir, "tensorboard", member, files[0]!)], { encoding: "utf8" });
  return (JSON.parse(out) as { records: Record_[] }).records;
}

describe("run scalars", () => {
  it("CRC-32C matches the standard check value", () => {
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8);
  });

  it("TensorBoard event files and metrics.jsonl round-trip through an independent reader", () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-scalars-"));
    try {
      const report = buildReport(storedRun("r"));
      const scalars = writeRunScalars(dir, report);
      expect(readdirSync(join(dir, "tensorboard")).sort()).toEqual([PANEL, "a", "b"]);
      const records = readBack(dir, "a");
      expect(records[0]!.file_version).toBe("brain.Event:2");
      const points = records.slice(1).map((r) => {
        expect(r.values).toHaveLength(1);
        return { tag: r.values![0]!.tag, step: r.step, value: r.values![0]!.simple_value, wall_time: r.wall_time };
      });
      const mine = scalars.filter((s) => s.member === "a");
      expect(points).toHaveLength(mine.length);
      for (const [i, s] of mine.entries()) {
        expect(points[i]!.tag).toBe(s.tag);
        expect(points[i]!.step).toBe(s.step);
        expect(points[i]!.value).toBeCloseTo(s.value, 6); // stored as float32
        expect(points[i]!.wall_time).toBe(s.wall_time);
      }
      const tags = new Set(points.map((p) => p.tag));
      for (const t of ["eval/x", "eval/y", "eval/average", "train/loss", "train/margin"]) expect(tags).toContain(t);
      // Iteration 2's training steps follow iteration 1's (4 steps): 2, 4, then 6, 8.
      expect(points.filter((p) => p.tag === "train/loss").map((p) => p.step)).toEqual([2, 4, 6, 8]);
      expect(points.filter((p) => p.tag === "eval/average").map((p) => p.step)).toEqual([0, 1, 2]);
      const panel = readBack(dir, PANEL).slice(1);
      expect(panel.map((r) => r.values![0]!.simple_value)).toEqual(report.iterations.map((it) => expect.closeTo(it.panelAverage, 6)));
      const lines = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n");
      expect(lines.map((l) => JSON.parse(l) as Scalar)).toEqual(scalars);
      expect(Object.keys(JSON.parse(lines[0]!) as object).sort()).toEqual(["member", "run", "step", "tag", "value", "wall_time"]);
      // A second write replaces the files rather than adding to them.
      writeRunScalars(dir, report);
      expect(readBack(dir, "a")).toHaveLength(records.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
