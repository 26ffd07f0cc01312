import { describe, expect, it } from "vitest";
import { formatSeeds, seedResult } from "../../deploy/observe/report/seeds.ts";
import type { Report } from "../../deploy/observe/report/report.ts";

const report = (ocrA: number[], ocrB: number[], avgA: number[], avgB: number[]): Report => ({
  schemaVersion: 2,
  commit: null,
  date: "2024-01-01T00:00:00.000Z",
  versions: { node: "20", natsServer: null, package: null, protocol: 2 },
  timeline: { iterations: [] },
  experiment: "demo",
  peers: ["a", "b"],
  suites: ["ocr", "colour"],
  iterations: [0, 1].map((i) => ({
    iteration: i,
    scores: { a: { ocr: ocrA[i]!, colour: 1 }, b: { ocr: ocrB[i]!, colour: 0.9 } },
    average: { a: avgA[i]!, b: avgB[i]! },
    panelAverage: (avgA[i]! + avgB[i]!) / 2,
    pairs: 10,
  })),
});

describe("demo:seeds", () => {
  it("reports each member's gain and every family a member lacked at the start", () => {
    const r = seedResult(7, report([0.1, 0.9], [1, 1], [0.5, 0.9], [0.8, 0.9]), 4.2);
    expect(r.gain).toBeCloseTo(0.25, 10);
    expect(r.memberGain.a).toBeCloseTo(0.4, 10);
    expect(r.memberGain.b).toBeCloseTo(0.1, 10);
    // colour differs by 0.1 only: not a gap
    expect(r.gaps).toEqual([{ member: "a", family: "ocr", first: 0.1, last: 0.9, bestPeerLast: 1 }]);
  });

  it("prints the mean and the spread of the gain over seeds", () => {
    const a = seedResult(1, report([0.1, 0.9], [1, 1], [0.5, 0.7], [0.8, 0.8]), 4); // +0.10
    const b = seedResult(2, report([0.1, 0.9], [1, 1], [0.5, 0.9], [0.8, 0.8]), 4); // +0.20
    const text = formatSeeds([a, b]);
    expect(text).toContain("a ocr 10.0->90.0 (100.0)");
    expect(text).toMatch(/gain over 2 seeds: mean \+15\.0 points, standard deviation 7\.1, lowest \+10\.0, highest \+20\.0/);
  });
});
