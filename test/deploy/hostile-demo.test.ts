/**
 * The demo with a hostile member (`pop demo --hostile`, `npm run demo:hostile`): the extra
 * member's composition, the voting rule's default, the report's mark and the honest members'
 * gain, and the comparison's tables. Fast: no run, no server.
 */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../deploy/cli/args.ts";
import { HOSTILE_CHECKPOINT_OF, HOSTILE_PEER, UNTRUSTED_AGGREGATE, aggregateRule, hostileMember, hostileMode } from "../../deploy/demo/hostile-member.ts";
import { armResult, bestArm, formatGains, formatPrecisionByArm, gainRatio } from "../../deploy/demo/hostile-arms.ts";
import { formatHostile, honestGain, hostileMark } from "../../deploy/observe/report/hostile.ts";
import { buildReport, formatTable } from "../../deploy/observe/report/report.ts";
import { renderHtml } from "../../deploy/observe/report/html.ts";
import { shippedCheckpoint } from "../../actors/models/tiny/checkpoints.ts";
import { storedRun } from "../support/stored-run.ts";
import { aggregate } from "../../coordinator/voting.ts";

const its = (rows: Record<string, number>[]) => rows.map((average) => ({ average }));

describe("the hostile member", () => {
  it("is mallory on lostspace's shipped checkpoint, judging with --hostile-judge MODE", () => {
    const m = hostileMember("invert", ["countless", "lostspace", "ocrdumb"], undefined, "help");
    expect(m).toEqual({ peer: HOSTILE_PEER, checkpoint: shippedCheckpoint(HOSTILE_CHECKPOINT_OF), args: ["--hostile-judge", "invert"], mode: "invert" });
    expect(() => hostileMember("invert", ["a", HOSTILE_PEER], undefined, "help")).toThrow(UsageError);
  });

  it("--hostile takes a hostile judge's mode only", () => {
    expect(hostileMode(undefined, "h")).toBeUndefined();
    expect(hostileMode("all-5", "h")).toBe("all-5");
    expect(() => hostileMode("nice", "h")).toThrow(/--hostile must be one of invert, all-5, random/);
  });

  it("the voting rule: as given, else the trusted demo's with an honest panel and the untrusted default with a hostile member", () => {
    expect(aggregateRule(undefined, false, "mean", "h")).toBe("mean");
    expect(aggregateRule(undefined, true, "mean", "h")).toBe(UNTRUSTED_AGGREGATE);
    expect(aggregateRule("median", true, "mean", "h")).toBe("median");
    expect(() => aggregateRule("max", false, "mean", "h")).toThrow(UsageError);
  });

  it("with three judges per candidate (four members) trimmed votes exactly as median: why demo:hostile's results leave it out", () => {
    for (const scores of [[0, 0.5, 1], [1, 1, 0], [0.2, 0.9, 0.4], [0.3, 0.7], [0.6]]) {
      const list = scores.map((score, i) => ({ judge: `j${i}`, score }));
      expect(aggregate(list, "trimmed")).toBe(aggregate(list, "median"));
    }
  });
});

describe("the honest members' gain", () => {
  const iterations = its([
    { a: 0.5, b: 0.6, m: 0.7 },
    { a: 0.6, b: 0.6, m: 0.2 },
    { a: 0.7, b: 0.65, m: 0.1 },
  ]);

  it("leaves the hostile members out, first -> last iteration", () => {
    const g = honestGain(["m", "b", "a"], iterations, { m: "invert" });
    expect(g.honest).toEqual(["a", "b"]);
    expect(g.gain.a).toBeCloseTo(0.2);
    expect(g.gain.b).toBeCloseTo(0.05);
    expect(g.meanGain).toBeCloseTo(0.125);
    // With nobody hostile, every member counts.
    expect(honestGain(["a", "b", "m"], iterations).meanGain).toBeCloseTo((0.2 + 0.05 - 0.6) / 3);
  });

  it("marks only hostile members that are in the panel", () => {
    expect(hostileMark(["a", "b"], iterations, { m: "invert" })).toBeUndefined();
    const mark = hostileMark(["a", "b", "m"], iterations, { m: "invert" })!;
    expect(mark.members).toEqual({ m: "invert" });
    expect(formatHostile(mark)).toBe("* hostile judge: m (invert); honest members' mean gain +12.5 points (a +20.0, b +5.0)");
  });

  it("report.json, the text table and report.html mark the hostile member", () => {
    // storedRun: a 50.0 -> 65.0, b 52.5 -> 67.5.
    const report = buildReport(storedRun("r"), { hostile: { b: "all-5" } });
    expect(report.hostile).toMatchObject({ members: { b: "all-5" }, honest: ["a"] });
    expect(report.hostile!.meanGain).toBeCloseTo(0.15);
    const table = formatTable(report);
    expect(table).toMatch(/^b\* +0 /m);
    expect(table).toContain("* hostile judge: b (all-5); honest members' mean gain +15.0 points (a +15.0)");
    expect(renderHtml(report, new Map())).toContain("(hostile judge: all-5)");
    // An honest run has no mark.
    expect(buildReport(storedRun("r")).hostile).toBeUndefined();
  });
});

describe("npm run demo:hostile's tables", () => {
  const row = (pairs: number, both: number) => ({ pairs, chosenRight: both + 1, rejectedWrong: both + 2, both });
  const report = (hostile: Record<string, string> | undefined, last: Record<string, number>) => ({
    peers: ["a", "b", ...(hostile ? ["m"] : [])],
    iterations: [
      { iteration: 0, scores: {}, average: { a: 0.5, b: 0.5, m: 0.5 }, panelAverage: 0.5, pairs: 0 },
      { iteration: 1, scores: {}, average: last, panelAverage: 0, pairs: 10, precision: { all: row(10, 8), colour: row(4, 4) } },
    ],
    ...(hostile ? { hostile: hostileMark(["a", "b", "m"], [{ average: { a: 0.5, b: 0.5 } }, { average: last }], hostile) } : {}),
  });
  const honest = armResult("all honest", "mean", report(undefined, { a: 0.7, b: 0.7 }), 3);
  const mean = armResult("m (invert)", "mean", report({ m: "invert" }, { a: 0.55, b: 0.6, m: 0.1 }), 4);
  const median = armResult("m (invert)", "median", report({ m: "invert" }, { a: 0.68, b: 0.7, m: 0.1 }), 4);

  it("an arm's honest gain leaves out the report's hostile members; the precision is the all-families row", () => {
    expect(mean.honest.honest).toEqual(["a", "b"]);
    expect(mean.honest.meanGain).toBeCloseTo(0.075);
    expect(mean.precision).toEqual([{ iteration: 1, ...row(10, 8) }]);
    expect(gainRatio(mean, honest)).toBeCloseTo(0.375);
    expect(bestArm([honest, mean, median], honest)).toBe(median);
  });

  it("formats one row per arm", () => {
    const gains = formatGains([honest, mean, median], honest);
    expect(gains.split("\n")[0]).toBe("| panel | voting rule | a | b | honest mean | of the all-honest mean | minutes |");
    expect(gains).toContain("| all honest | mean | +20.0 | +20.0 | **+20.0** | 100% | 3.0 |");
    expect(gains).toContain("| m (invert) | median | +18.0 | +20.0 | **+19.0** | 95% | 4.0 |");
    expect(formatPrecisionByArm([honest, mean])).toContain("| m (invert) | mean | 80% both (90% chosen right, 100% rejected wrong; 10 pairs) |");
  });
});
