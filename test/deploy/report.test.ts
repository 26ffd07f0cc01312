import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { describeOutputs } from "../../deploy/observe/report/outputs.ts";
import { describe, expect, it } from "vitest";
import { Flags, UsageError } from "../../deploy/cli/args.ts";
import { encodePng } from "../../actors/images/png-encode.ts";
import { buildReport, formatTable, trlRecord } from "../../deploy/observe/report/report.ts";
import { renderHtml } from "../../deploy/observe/report/html.ts";
import type { EvaluationResult, PreferencePair } from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";
import { storedRun } from "../support/stored-run.ts";
import { upgradeReport } from "../../deploy/observe/report/load.ts";
import { PROTOCOL_VERSION } from "../../protocol/mod.ts";
import { poolItem, poolPromptId } from "../../actors/models/tiny/world.ts";

const ev = (peer: string, iteration: number, suites: Record<string, number>): EvaluationResult =>
  msg.evaluation({
    experiment: "r",
    iteration,
    peer,
    modelVersion: `${peer}${iteration}`,
    suites,
    average: Object.values(suites).reduce((a, b) => a + b, 0) / Object.values(suites).length,
    items: 10,
    at: iteration,
  });
const pair = (iteration: number, promptId: string): PreferencePair =>
  msg.pair({
    experiment: "r",
    iteration,
    pairId: `${iteration}:${promptId}`,
    promptId,
    question: "what colour ?",
    images: [{ hash: `sha256-${"0".repeat(64)}`, format: "rgb8", width: 1, height: 1 }],
    chosen: { candidateId: "c1", author: "a", text: "red", score: 0.9 },
    rejected: { candidateId: "c2", author: "b", text: "two", score: 0.1 },
    margin: 0.8,
    judges: ["b"],
    createdAt: 0,
  });

describe("report", () => {
  it("tabulates members x suites x iterations with the panel average; a re-evaluation replaces the earlier one", () => {
    const report = buildReport({
      experiment: "r",
      evaluations: [
        ev("a", 0, { x: 0.2, y: 0.4 }),
        ev("b", 0, { x: 0.6, y: 0.8 }),
        ev("a", 1, { x: 0.1, y: 0.1 }),
        ev("a", 1, { x: 0.5, y: 0.7 }),
        ev("b", 1, { x: 0.7, y: 0.9 }),
      ],
      // p1 and p2: prompts whose truth is unknown; the third a tiny pool prompt, graded against its answer.
      pairs: [pair(1, "p1"), pair(1, "p2"), { ...pair(1, poolPromptId(7, 0)), question: poolItem(7, 0).question }],
      control: [],
    });
    expect(report.peers).toEqual(["a", "b"]);
    expect(report.suites).toEqual(["x", "y"]);
    expect(report.iterations.map((i) => i.iteration)).toEqual([0, 1]);
    expect(report.iterations[0]!.panelAverage).toBeCloseTo(0.5, 12);
    expect(report.iterations[1]!.scores.a).toEqual({ x: 0.5, y: 0.7 });
    expect(report.iterations[1]!.panelAverage).toBeCloseTo(0.7, 12);
    expect(report.iterations[1]!.pairs).toBe(3);
    expect(formatTable(report)).toMatch(/panel average\s+1\s+70\.0/);
    // Pair precision: the chosen "red" is right only if the item's colour is red; the rejected "two" is never a colour.
    const red = poolItem(7, 0).answer === "red" ? 1 : 0;
    expect(report.iterations[0]!.precision).toBeUndefined();
    expect(report.iterations[1]!.precision).toEqual({
      colour: { pairs: 1, chosenRight: red, rejectedWrong: 1, both: red },
      all: { pairs: 1, chosenRight: red, rejectedWrong: 1, both: red },
    });
    expect(formatTable(report)).toMatch(/pair precision[\s\S]*\n\s+1 all\s+1\s/);
    const html = renderHtml(report);
    expect(html).toContain("<h2>Pair precision</h2>");
    expect(html).toContain("<svg");
    expect(html).not.toMatch(/<script|https?:\/\//);
  });

  it("has the model cost per iteration, member and phase, and per prompt, from the training_done events", () => {
    const report = buildReport({
      experiment: "r",
      evaluations: [ev("a", 1, { x: 0.5 })],
      pairs: [],
      control: [
        msg.control("iteration_opened", { iteration: 1, peers: ["a", "b"], prompts: 2, at: 1 }, "r"),
        msg.trainingDone(1, "b", msg.phaseCost(2), "r"),
        msg.trainingDone(1, "a", { answer: msg.usage(2), train: msg.usage(1, { modelSeconds: 0.4 }) }, "r"),
      ],
    });
    expect(report.cost).toEqual([
      {
        iteration: 1,
        peer: "a",
        phase: "answer",
        requests: 2,
        promptTokens: 20,
        completionTokens: 6,
        seconds: 1,
        prompts: 2,
        perPrompt: { requests: 1, tokens: 13, seconds: 0.5 },
      },
      {
        iteration: 1,
        peer: "a",
        phase: "train",
        requests: 1,
        promptTokens: 10,
        completionTokens: 3,
        seconds: 0.5,
        modelSeconds: 0.4,
        prompts: 2,
        perPrompt: { requests: 0.5, tokens: 6.5, seconds: 0.25 },
      },
      {
        iteration: 1,
        peer: "b",
        phase: "answer",
        requests: 2,
        promptTokens: 20,
        completionTokens: 6,
        seconds: 1,
        prompts: 2,
        perPrompt: { requests: 1, tokens: 13, seconds: 0.5 },
      },
      {
        iteration: 1,
        peer: "b",
        phase: "judge",
        requests: 2,
        promptTokens: 20,
        completionTokens: 6,
        seconds: 1,
        prompts: 2,
        perPrompt: { requests: 1, tokens: 13, seconds: 0.5 },
      },
    ]);
    expect(JSON.parse(JSON.stringify(report)).cost).toHaveLength(4);
    expect(renderHtml(report)).toMatch(/<table id="cost">[\s\S]*<td>a<\/td><td>1<\/td><td>train<\/td><td>1<\/td><td>10 \/ 3<\/td>/);
  });

  it("report.html scales its axes to the data, marks chance, tells members apart and shows training, examples and settings", () => {
    const evs = [ev("a", 0, { x: 0.62, y: 0.7 }), ev("b", 0, { x: 0.64, y: 0.7 }), ev("a", 1, { x: 0.8, y: 0.74 }), ev("b", 1, { x: 0.81, y: 0.72 })].map(
      (e) => ({ ...e, chance: { x: 0.5, y: 0.25 } }),
    );
    const report = buildReport({
      experiment: "r",
      evaluations: evs,
      pairs: [pair(1, "p1")],
      control: [
        msg.control(
          "training_done",
          {
            iteration: 1,
            peer: "a",
            modelVersion: "m",
            result: {
              steps: 4,
              pairs: 8,
              lossFirst: 2,
              lossLast: 1.2,
              terms: { simpo: [1, 0.5], nll: [1, 0.7] },
              marginBefore: -0.1,
              marginAfter: 0.4,
              ms: 1500,
              curve: [
                [2, 1.6, 0.1],
                [4, 1.2, 0.4],
              ],
            },
            at: 1,
          },
          "r",
        ),
      ],
    });
    expect(report.chance).toEqual({ x: 0.5, y: 0.25 });
    expect(report.training).toEqual([
      expect.objectContaining({
        peer: "a",
        iteration: 1,
        steps: 4,
        seconds: 1.5,
        terms: { simpo: { first: 1, last: 0.5 }, nll: { first: 1, last: 0.7 } },
        curve: [
          { step: 2, loss: 1.6, margin: 0.1 },
          { step: 4, loss: 1.2, margin: 0.4 },
        ],
      }),
    ]);
    const html = renderHtml(report, new Map([[1, [{ pair: pair(1, "p1"), suite: "x", image: "data:image/png;base64,AAAA" }]]]));
    // The y axis of suite x spans its data and the chance line (50..81), not 0..100.
    const x = html.slice(html.indexOf('aria-label="x"'), html.indexOf("</svg>", html.indexOf('aria-label="x"')));
    expect(x).toContain("chance 50");
    expect(x).not.toMatch(/>100</);
    expect(x).toMatch(/>accuracy \(%\)</);
    expect(x).toMatch(/>iteration \(0 = before training\)</);
    // members differ in dash and marker, not only colour
    expect(html).toMatch(/stroke="#d62728" stroke-width="2" stroke-dasharray="7 3"/);
    expect(html).toContain("<rect");
    expect(html).toMatch(/change since iteration 0/);
    expect(html).toMatch(/<td><b>77\.0<\/b><\/td><td>\+11\.0<\/td>/); // a: 66.0 -> 77.0
    expect(html).toMatch(/Iteration 1: loss/);
    expect(html).toMatch(/simpo first → last/);
    expect(html).toContain('<img src="data:image/png;base64,AAAA"');
    expect(html).not.toMatch(/<script|https?:\/\//);
  });

  it("report.json v2: schema version, provenance, the timeline and named curve points; a v1 report reads back in the same shape", () => {
    const report = buildReport(storedRun("r"), {
      provenance: {
        commit: "c".repeat(40),
        date: "2024-05-01T10:00:00.000Z",
        versions: { node: "20.0.0", natsServer: "2.10.0", package: "0.1.0", protocol: PROTOCOL_VERSION },
      },
    });
    expect(report.schemaVersion).toBe(2);
    expect(report.commit).toBe("c".repeat(40));
    expect(report.date).toBe("2024-05-01T10:00:00.000Z");
    expect(report.versions).toEqual({ node: "20.0.0", natsServer: "2.10.0", package: "0.1.0", protocol: PROTOCOL_VERSION });
    // The breakdown the demo prints, from the stored times: opened -> last answer 1 s, -> last verdict 2 s,
    // -> closed 1 s, -> last training_done 2 s less the 0.2 s evaluation.
    const it1 = report.timeline.iterations.find((t) => t.iteration === 1)!;
    expect(it1).toMatchObject({
      answering: 1_000,
      collecting: 2_000,
      voteWait: 1_000,
      training: 1_800,
      evaluation: 200,
      trainingByPeer: { a: 1_500, b: 1_500 },
    });
    expect(report.timeline.iterations.map((t) => t.iteration)).toEqual([0, 1, 2]);
    expect(report.timeline.endedAt! - report.timeline.startedAt!).toBe(15_000);
    expect(report.training![0]!.curve).toEqual([
      { step: 2, loss: 1.5, margin: 0.25 },
      { step: 4, loss: 1, margin: 0.5 },
    ]);
    // Written without being told: this checkout's commit (or null), now, this node.
    const here = buildReport(storedRun("r"));
    expect(here.commit === null || /^[0-9a-f]{40}$/.test(here.commit)).toBe(true);
    expect(Date.now() - Date.parse(here.date!)).toBeLessThan(60_000);
    expect(here.versions).toMatchObject({ node: process.versions.node, package: "0.1.0", protocol: PROTOCOL_VERSION });
    // A v1 report (no schemaVersion, positional curves and terms) is upgraded on reading.
    const { schemaVersion: _, commit: _c, date: _d, versions: _v, timeline: _t, ...rest } = report;
    const v1 = {
      ...rest,
      training: report.training!.map(({ curve, ...row }) => ({ ...row, terms: { simpo: [1, 0.5] }, curve: curve!.map((p) => [p.step, p.loss, p.margin]) })),
    };
    const up = upgradeReport(JSON.parse(JSON.stringify(v1)));
    expect(up.schemaVersion).toBe(2);
    expect(up.commit).toBeNull();
    expect(up.training![0]!.curve).toEqual(report.training![0]!.curve);
    expect(up.training![0]!.terms).toEqual({ simpo: { first: 1, last: 0.5 } });
    expect(up.timeline).toEqual({ iterations: [] });
    expect(() => upgradeReport({ ...report, schemaVersion: 99 })).toThrow(/schemaVersion 99/);
  });

  it("writes pairs in TRL's conversational preference shape", () => {
    const r = trlRecord(pair(1, "p1"), ["images/x.png"]);
    expect(r.prompt).toEqual([{ role: "user", content: [{ type: "image" }, { type: "text", text: "what colour ?" }] }]);
    expect(r.chosen).toEqual([{ role: "assistant", content: [{ type: "text", text: "red" }] }]);
    expect(r.rejected[0]!.content[0]!.text).toBe("two");
    expect(r.images).toEqual(["images/x.png"]);
  });

  it("encodes a valid PNG", () => {
    const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
    const png = encodePng(2, 2, rgb);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.readUInt32BE(16)).toBe(2);
    const idatLen = png.readUInt32BE(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    expect([...raw]).toEqual([0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 9, 9, 9]);
  });
});

describe("the demo's closing lines", () => {
  it("name each file and folder of the output with its size and what it is", () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-out-"));
    try {
      writeFileSync(join(dir, "report.json"), "x".repeat(1500));
      writeFileSync(join(dir, "pairs-iter10.jsonl"), "y");
      writeFileSync(join(dir, "pairs-iter2.jsonl"), "z");
      mkdirSync(join(dir, "images"));
      for (const n of ["a", "b"]) writeFileSync(join(dir, "images", `${n}.png`), "p".repeat(100));
      const lines = describeOutputs(dir);
      expect(lines[0]).toMatch(/^  images\/ +200 B, 2 files  the pairs' images$/);
      expect(lines.slice(1, 3).map((l) => l.trim().split(" ")[0])).toEqual(["pairs-iter2.jsonl", "pairs-iter10.jsonl"]);
      expect(lines[3]).toMatch(/^  report\.json +1\.5 kB  scores per member, suite and iteration$/);
      expect(lines.at(-1)).toMatch(/1\.7 kB  in all$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("command-line flags", () => {
  it("reads values and explains mistakes", () => {
    const help = `usage: x [options]

  --k N              candidates
  --temperature T    sampling temperature
  --self-judging     count a judge's own answers
  --peer NAME        a member
  (prose that mentions --other is not an option)`;
    const f = new Flags(["--k", "4", "--temperature=0.5", "--self-judging", "--peer", "x"], help);
    expect(f.int("k")).toBe(4);
    expect(f.number("temperature")).toBe(0.5);
    expect(f.bool("self-judging")).toBe(true);
    expect(() => f.rejectUnknown()).toThrow(/--peer does not apply with the other options given/);
    expect(() => new Flags(["--other", "1"], help)).toThrow(/unknown option: --other/);
    expect(() => new Flags(["--k"], help)).toThrow(/--k needs a value/);
    expect(() => new Flags(["--k", "--peer", "a"], help)).toThrow(/--k needs a value/);
    expect(() => new Flags(["--self-judging=maybe"], help).bool("self-judging")).toThrow(/takes no value \(got 'maybe'\)/);
    expect(() => new Flags(["--k", "x"], help).int("k")).toThrow(/must be a number/);
    expect(() => new Flags(["--k", "2.5"], help).int("k")).toThrow(/whole number/);
    expect(() => new Flags(["--k", "0"], help).int("k", { min: 1 })).toThrow(UsageError);
    expect(() => new Flags(["stray"], help)).toThrow(/unexpected argument 'stray'/);
    // A command that reads an option its help does not list fails at once (help and parsing cannot drift).
    expect(() => new Flags([], help).string("undocumented")).toThrow(/--undocumented is read but its command's help does not list it/);
    expect(() => new Flags([], help).bool("k")).toThrow(/read without a value but its help lists it with one/);
    expect(new Flags(["--k", "3", "--self-judging", "--peer=a"], help).rest(["k"])).toEqual(["--self-judging", "--peer=a"]);
  });
});
