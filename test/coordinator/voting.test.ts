import { describe, expect, it } from "vitest";
import { addToTally, combine, newTally, scoreCandidates, votePrompt } from "../../coordinator/voting.ts";
import { VotingConfig, type CandidateBatch, type LikertScores, type Prompt, type Verdict } from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";

const experiment = "vt";
const prompt: Prompt = msg.prompt({ experiment, promptId: "p1", question: "what colour ?", createdAt: 0 });
const all = (s: number): LikertScores => msg.likert(s);
const batch = (author: string, texts: string[]): CandidateBatch =>
  msg.candidates({ experiment, promptId: "p1", question: prompt.question, author, modelVersion: "m", texts, createdAt: 0 });
const verdict = (judge: string, author: string, scores: LikertScores[]): Verdict =>
  msg.verdict({ experiment, promptId: "p1", judge, modelVersion: "m", scored: { [author]: scores }, createdAt: 0 });
const defaults = VotingConfig.parse({});

describe("mean voting", () => {
  it("leaves a judge's abstention out instead of counting it as a low score", () => {
    const t = newTally(prompt);
    addToTally(t, batch("alice", ["red", "blue"]));
    addToTally(t, verdict("bob", "alice", [all(5), all(1)]));
    // carol could not be read on alice's first answer: only bob's score counts there
    addToTally(t, {
      ...verdict("carol", "alice", [all(1), all(2)]),
      scores: [
        { candidateId: "p1:alice:0", abstained: 'correctness: reply "nice" holds no score' },
        { candidateId: "p1:alice:1", likert: all(2) },
      ],
    });
    const scored = scoreCandidates(t, defaults);
    expect(scored.map((s) => [s.candidateId, s.score, s.judges])).toEqual([
      ["p1:alice:0", 1, ["bob"]],
      ["p1:alice:1", (0 + 0.25) / 2, ["bob", "carol"]],
    ]);
    // with two judges required, the abstention leaves that candidate unvoted
    expect(scoreCandidates(t, { ...defaults, minJudges: 2 }).map((s) => s.candidateId)).toEqual(["p1:alice:1"]);
  });

  it("normalises Likert scores and averages the five criteria", () => {
    expect(combine(all(5), "mean")).toBe(1);
    expect(combine(all(1), "mean")).toBe(0);
    // (4-1)/4=0.75, (5-1)/4=1, (3-1)/4=0.5, (2-1)/4=0.25, (1-1)/4=0 -> mean 0.5
    expect(combine({ helpfulness: 4, correctness: 5, coherence: 3, complexity: 2, verbosity: 1 }, "mean")).toBeCloseTo(0.5, 12);
    expect(combine({ helpfulness: 1, correctness: 5, coherence: 1, complexity: 1, verbosity: 1 }, "correctness")).toBe(1);
  });

  it("averages over judges, excludes the author's own verdicts and pools the panel", () => {
    const t = newTally(prompt);
    addToTally(t, batch("alice", ["red", "blue"]));
    addToTally(t, batch("bob", ["green"]));
    addToTally(t, verdict("bob", "alice", [all(5), all(1)]));
    addToTally(t, verdict("carol", "alice", [all(4), all(2)]));
    addToTally(t, verdict("alice", "alice", [all(1), all(5)])); // self-judging: ignored by default
    addToTally(t, verdict("alice", "bob", [all(3)]));
    addToTally(t, verdict("carol", "bob", [all(3)]));
    const scored = scoreCandidates(t, defaults);
    expect(scored.map((s) => [s.candidateId, s.score])).toEqual([
      ["p1:alice:0", (1 + 0.75) / 2],
      ["p1:bob:0", 0.5],
      ["p1:alice:1", (0 + 0.25) / 2],
    ]);
    const pairs = votePrompt(t, defaults, { now: 1 });
    expect(pairs).toHaveLength(1);
    expect(pairs[0]!.chosen).toMatchObject({ author: "alice", text: "red", score: 0.875 });
    expect(pairs[0]!.rejected).toMatchObject({ author: "alice", text: "blue", score: 0.125 });
    expect(pairs[0]!.margin).toBe(0.75);
    expect(pairs[0]!.judges).toEqual(["bob", "carol"]);
    expect(pairs[0]!.pairId).toBe("1:p1");

    // With self-judging on, alice's harsh verdict on her own "red" counts too: 0.875 -> (1+0.75+0)/3.
    const self = scoreCandidates(t, { ...defaults, selfJudging: true });
    expect(self.find((s) => s.candidateId === "p1:alice:0")!.score).toBeCloseTo(1.75 / 3, 12);
  });

  it("keeps a pair only above both thresholds", () => {
    const t = newTally(prompt);
    addToTally(t, batch("alice", ["a", "b"]));
    addToTally(t, verdict("bob", "alice", [all(4.2), all(1.2)])); // 0.8 and 0.05
    expect(votePrompt(t, defaults)).toHaveLength(0); // chosen 0.8 < 0.85
    expect(votePrompt(t, { ...defaults, minChosen: 0.8, minMargin: 0.75 })).toHaveLength(1);
    expect(votePrompt(t, { ...defaults, minChosen: 0.8, minMargin: 0.76 })).toHaveLength(0); // margin 0.75
  });

  it("pairs per member when asked, and ignores redelivered messages", () => {
    const t = newTally(prompt);
    expect(addToTally(t, batch("alice", ["a", "b"]))).toBe(true);
    expect(addToTally(t, batch("alice", ["x", "y"]))).toBe(false);
    addToTally(t, batch("bob", ["c", "d"]));
    addToTally(t, verdict("carol", "alice", [all(5), all(1)]));
    addToTally(t, verdict("carol", "bob", [all(5), all(1)]));
    expect(addToTally(t, verdict("carol", "bob", [all(1), all(5)]))).toBe(false);
    const pairs = votePrompt(t, { ...defaults, pairing: "per-member" });
    expect(pairs.map((p) => [p.forPeer, p.chosen.text, p.rejected.text, p.pairId])).toEqual([
      ["alice", "a", "b", "1:p1:alice"],
      ["bob", "c", "d", "1:p1:bob"],
    ]);
  });

  it("never pairs an empty or whitespace-only answer: the worst answer with text is rejected instead", () => {
    const t = newTally(prompt);
    addToTally(t, batch("alice", ["red", "", "blue"]));
    addToTally(t, batch("bob", [" \n\t"]));
    addToTally(t, verdict("carol", "alice", [all(5), all(1), all(1.2)]));
    addToTally(t, verdict("carol", "bob", [all(1)]));
    const pairs = votePrompt(t, defaults, { now: 1 });
    expect(pairs.map((p) => [p.chosen.text, p.rejected.text])).toEqual([["red", "blue"]]);
    // Per member: bob has nothing but a blank answer, so no pair for him; alice's skips her blank one.
    const perMember = votePrompt(t, { ...defaults, pairing: "per-member" }, { now: 1 });
    expect(perMember.map((p) => [p.forPeer, p.chosen.text, p.rejected.text])).toEqual([["alice", "red", "blue"]]);
    // A blank answer scored best is not chosen either: the pair falls to the answers with text.
    const u = newTally(prompt);
    addToTally(u, batch("alice", ["", "red", "blue"]));
    addToTally(u, verdict("carol", "alice", [all(5), all(5), all(1)]));
    expect(votePrompt(u, defaults, { now: 1 }).map((p) => [p.chosen.text, p.rejected.text])).toEqual([["red", "blue"]]);
    // Nothing but blanks beside one answer: no pair at all.
    const w = newTally(prompt);
    addToTally(w, batch("alice", ["red", "  "]));
    addToTally(w, verdict("carol", "alice", [all(5), all(1)]));
    expect(votePrompt(w, defaults, { now: 1 })).toEqual([]);
  });

  it("counts only the given judges and needs minJudges", () => {
    const t = newTally(prompt);
    addToTally(t, batch("alice", ["a", "b"]));
    addToTally(t, verdict("bob", "alice", [all(5), all(1)]));
    addToTally(t, verdict("mallory", "alice", [all(1), all(5)]));
    expect(votePrompt(t, defaults, { judges: new Set(["bob"]) })[0]!.chosen.text).toBe("a");
    expect(votePrompt(t, { ...defaults, minJudges: 2 }, { judges: new Set(["bob"]) })).toHaveLength(0);
  });
});

describe("robust voting rules", () => {
  // Three honest judges agree that alice's first answer beats her second, and that bob's beats
  // carol's; three hostile ones: an inverter, one that scores everything 5, one that is random.
  const honest = { red: 5, blue: 2, green: 4, grey: 1 };
  const inverted = { red: 1, blue: 4, green: 2, grey: 5 };
  const tallyWith = (hostile: Record<string, Record<string, number>>) => {
    const t = newTally(prompt);
    addToTally(t, batch("alice", ["red", "blue"]));
    addToTally(t, batch("bob", ["green", "grey"]));
    const judges: Record<string, Record<string, number>> = { h1: honest, h2: { ...honest, blue: 1 }, h3: { ...honest, green: 5 }, ...hostile };
    for (const [judge, s] of Object.entries(judges)) {
      addToTally(t, verdict(judge, "alice", [all(s.red!), all(s.blue!)]));
      addToTally(t, verdict(judge, "bob", [all(s.green!), all(s.grey!)]));
    }
    return t;
  };
  const hostile = { inv: inverted, five: { red: 5, blue: 5, green: 5, grey: 5 }, rnd: { red: 2, blue: 5, green: 1, grey: 4 } };
  const honestPair = (rule: VotingConfig["aggregate"]) =>
    votePrompt(tallyWith({}), { ...defaults, minChosen: 0, minMargin: 0, aggregate: rule }, { now: 1 })[0]!;

  it("keeps the honest panel's pair under every rule when no judge is hostile", () => {
    for (const rule of ["mean", "median", "trimmed", "agreement"] as const) {
      const p = honestPair(rule);
      expect([p.chosen.text, p.rejected.text], rule).toEqual(["red", "grey"]);
    }
  });

  it("the mean is pulled by hostile judges; median, trimmed mean and agreement weights hold the honest order", () => {
    const vote = (rule: VotingConfig["aggregate"]) =>
      votePrompt(tallyWith(hostile), { ...defaults, minChosen: 0, minMargin: 0, aggregate: rule }, { now: 1 })[0]!;
    // The mean's margin shrinks from the honest panel's to a fraction of it.
    expect(vote("mean").margin).toBeLessThan(honestPair("mean").margin / 2);
    for (const rule of ["median", "trimmed", "agreement"] as const) {
      expect([vote(rule).chosen.text, vote(rule).rejected.text], rule).toEqual(["red", "grey"]);
    }
    // Agreement weights: the inverter and the flat judge count for nothing.
    const t = tallyWith(hostile);
    const scored = scoreCandidates(t, { ...defaults, aggregate: "agreement" });
    const red = scored.find((s) => s.text === "red")!;
    expect(red.score).toBeGreaterThan(0.85);
  });

  it("median and trimmed mean follow their definitions", async () => {
    const { aggregate } = await import("../../coordinator/voting.ts");
    const js = (xs: number[]) => xs.map((score, i) => ({ judge: `j${i}`, score }));
    expect(aggregate(js([0, 1, 0.5]), "median")).toBe(0.5);
    expect(aggregate(js([0, 1, 0.5, 0.25]), "median")).toBe(0.375);
    expect(aggregate(js([0, 1, 0.5, 0.25, 0.75]), "trimmed")).toBe(0.5); // drops 0 and 1
    expect(aggregate(js([0, 1]), "trimmed")).toBe(0.5); // two judges: nothing to trim
  });
});
