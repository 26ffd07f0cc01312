/** The collector's state machine, driven directly: when a prompt is due, what counts, deadlines. */
import { describe, expect, it } from "vitest";
import { listedPrompts } from "../../coordinator/iteration-prompts.ts";
import { VoteBook } from "../../coordinator/vote-book.ts";
import { JudgeAssignment, VotingConfig, type CandidateBatch, type Prompt, type Verdict } from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";

const experiment = "vb";
const prompt = (id: string): Prompt => msg.prompt({ experiment, promptId: id, question: "q ?", createdAt: 0 });
const batch = (promptId: string, author: string, texts: string[]): CandidateBatch =>
  msg.candidates({ experiment, promptId, question: "q ?", author, modelVersion: "m", texts, createdAt: 0 });
const verdict = (promptId: string, judge: string, author: string, scores: number[]): Verdict =>
  msg.verdict({ experiment, promptId, judge, modelVersion: "m", scored: { [author]: scores }, createdAt: 0 });
const voting = VotingConfig.parse({ minChosen: 0, minMargin: 0 });
const members = new Set(["a", "b", "c"]);

/** Every member answers p1 and judges the others; returns the book. */
function fullRound(book: VoteBook, skip: string[] = []) {
  const steps: (CandidateBatch | Verdict)[] = [batch("p1", "a", ["red"]), batch("p1", "b", ["blue"]), batch("p1", "c", ["green"])];
  for (const j of members) for (const au of members) if (j !== au) steps.push(verdict("p1", j, au, [au === "a" ? 5 : 1]));
  for (const m of steps) if (!skip.includes(m.type === "candidates" ? `cand:${m.author}` : `verdict:${m.judge}:${m.authors[0]}`)) book.add(m, 1000);
}

describe("the vote book", () => {
  it("votes a prompt as soon as every live member has answered it and judged every other member", () => {
    const book = new VoteBook(listedPrompts([prompt("p1"), prompt("p2")]), members, voting, 60_000);
    fullRound(book, ["verdict:c:b"]);
    expect(book.ready("p1", members)).toBe(false);
    expect(book.vote("p1", members, false)).toBeUndefined();
    expect(book.add(verdict("p1", "c", "b", [1]), 1000)).toBe("p1");
    const pairs = book.vote("p1", members, false)!;
    expect(pairs).toHaveLength(1);
    expect(pairs[0]!.chosen.author).toBe("a");
    // voted once: a second call, or a late message, changes nothing
    expect(book.vote("p1", members, false)).toBeUndefined();
    expect(book.add(verdict("p1", "a", "b", [5]), 2000)).toBeUndefined();
    expect(book.votedCount).toBe(1);
    expect(book.complete).toBe(false);
    // open: not voted and something in (a prompt holds no memory before its first message)
    expect(book.open()).toEqual([]);
    expect(book.add(batch("p2", "a", ["red"]), 3000)).toBe("p2");
    expect(book.open()).toEqual(["p2"]);
  });

  it("says who its open prompts still wait for: live authors yet to answer and live judges yet to score", () => {
    const book = new VoteBook(listedPrompts([prompt("p1"), prompt("p2")]), members, voting, 60_000);
    expect(book.waitingOn(members)).toEqual({ prompts: 0, authors: [], judges: [] });
    fullRound(book, ["verdict:c:b", "verdict:b:a"]);
    expect(book.waitingOn(members)).toEqual({ prompts: 1, authors: [], judges: ["b", "c"] });
    book.add(batch("p2", "a", ["red"]), 1000);
    expect(book.waitingOn(members)).toEqual({ prompts: 2, authors: ["b", "c"], judges: ["b", "c"] });
    // a dead member is not waited for
    expect(book.waitingOn(new Set(["a", "b"]))).toEqual({ prompts: 2, authors: ["b"], judges: ["b"] });
  });

  it("votes a prompt nothing arrived for once every member gave up answering it", () => {
    const book = new VoteBook(listedPrompts([prompt("p1")]), members, voting, 60_000);
    expect(book.open()).toEqual([]);
    for (const m of members) expect(book.excuse("p1", m)).toBe("p1");
    expect(book.vote("p1", members, false)).toEqual([]);
    expect(book.complete).toBe(true);
  });

  it("does not wait for a member that is no longer alive, and ignores non-members and redeliveries", () => {
    const book = new VoteBook(listedPrompts([prompt("p1")]), members, voting, 60_000);
    fullRound(book, ["cand:c", "verdict:c:a", "verdict:c:b", "verdict:a:c", "verdict:b:c"]);
    expect(book.ready("p1", members)).toBe(false);
    expect(book.ready("p1", new Set(["a", "b"]))).toBe(true);
    expect(book.add(batch("p1", "mallory", ["x"]), 1)).toBeUndefined();
    expect(book.add(verdict("p1", "mallory", "a", [1]), 1)).toBeUndefined();
    expect(book.add(batch("p1", "a", ["red"]), 1)).toBeUndefined(); // redelivered
    expect(book.ready("p1", new Set())).toBe(false); // nobody alive: nothing to decide
  });

  it("votes an overdue prompt with what is in, counting the deadline from its first candidate batch", () => {
    const book = new VoteBook(listedPrompts([prompt("p1")]), members, voting, 10_000);
    expect(book.overdue("p1", 1_000_000)).toBe(false); // no candidates yet: no deadline running
    expect(book.nextDeadline()).toBe(Infinity);
    book.add(batch("p1", "a", ["red"]), 1000);
    expect(book.nextDeadline()).toBe(11_000); // the collector sweeps no sooner, unless the panel changes
    book.add(batch("p1", "b", ["blue"]), 5000);
    book.add(verdict("p1", "b", "a", [5]), 5000);
    book.add(verdict("p1", "a", "b", [1]), 5000);
    expect(book.overdue("p1", 11_000)).toBe(false);
    expect(book.overdue("p1", 11_001)).toBe(true);
    expect(book.vote("p1", members, false)).toBeUndefined();
    const pairs = book.vote("p1", members, true)!;
    expect(pairs.map((p) => [p.chosen.author, p.rejected.author])).toEqual([["a", "b"]]);
    expect(book.nextDeadline()).toBe(Infinity); // voted: its deadline no longer counts
  });

  it("stops waiting for an answer or a verdict a member gave up on, from members only", () => {
    const book = new VoteBook(listedPrompts([prompt("p1")]), members, voting, 60_000);
    // a and b answer; c's model failed on the prompt.
    book.add(batch("p1", "a", ["red"]), 1000);
    book.add(batch("p1", "b", ["blue"]), 1000);
    for (const [judge, author, s] of [
      ["b", "a", 5],
      ["c", "a", 5],
      ["a", "b", 1],
    ] as const)
      book.add(verdict("p1", judge, author, [s]), 1000);
    expect(book.ready("p1", members)).toBe(false);
    expect(book.excuse("p1", "mallory")).toBeUndefined(); // not a member: changes nothing
    expect(book.excuse("p1", "c")).toBe("p1");
    expect(book.ready("p1", members)).toBe(false); // c's verdict on b is still expected
    expect(book.excuse("p1", "c", "mallory")).toBeUndefined();
    expect(book.excuse("p1", "c", "b")).toBe("p1"); // c could not judge b's batch either
    expect(book.ready("p1", members)).toBe(true);
    const pairs = book.vote("p1", members, false)!;
    expect(pairs.map((p) => [p.chosen.author, p.rejected.author])).toEqual([["a", "b"]]);
    expect(book.excuse("p1", "c")).toBeUndefined(); // voted
  });

  it("tells the earliest deadline of the prompts still open, voted or released ones aside", () => {
    const book = new VoteBook(listedPrompts([prompt("p1"), prompt("p2"), prompt("p3")]), members, voting, 10_000);
    book.add(batch("p1", "a", ["red"]), 1000);
    book.add(batch("p2", "a", ["red"]), 2000);
    book.add(batch("p3", "a", ["red"]), 3000);
    expect(book.nextDeadline()).toBe(11_000);
    book.vote("p1", members, true); // voted, its pairs not yet out
    expect(book.nextDeadline()).toBe(12_000);
    book.release("p1");
    book.vote("p2", members, true);
    book.unmark("p2"); // its pair could not be published: open again
    expect(book.nextDeadline()).toBe(12_000);
    book.vote("p2", members, true);
    book.release("p2");
    expect(book.nextDeadline()).toBe(13_000);
  });

  it("waits for authors' own verdicts under self-judging, and re-votes a prompt whose pair did not go out", () => {
    const book = new VoteBook(listedPrompts([prompt("p1")]), members, VotingConfig.parse({ minChosen: 0, minMargin: 0, selfJudging: true }), 60_000);
    fullRound(book);
    expect(book.ready("p1", members)).toBe(false);
    for (const m of members) book.add(verdict("p1", m, m, [3]), 1000);
    expect(book.vote("p1", members, false)).toHaveLength(1);
    book.unmark("p1");
    expect(book.vote("p1", members, false)).toHaveLength(1);
    expect(book.complete).toBe(true);
  });

  it("forgets a prompt's messages once its pairs are out, and still counts it as voted", () => {
    const book = new VoteBook(listedPrompts([prompt("p1"), prompt("p2")]), members, VotingConfig.parse({ minChosen: 0, minMargin: 0 }), 60_000);
    fullRound(book);
    expect(book.vote("p1", members, false)).toHaveLength(1);
    book.release("p1");
    book.add(batch("p2", "b", ["blue"]), 1000);
    book.release("p2"); // not voted: kept
    expect(book.prompts).toBe(2);
    expect(book.votedCount).toBe(1);
    expect(book.open()).toEqual(["p2"]);
    // a late or redelivered message for a released prompt changes nothing
    expect(book.add(batch("p1", "a", ["red"]), 2000)).toBeUndefined();
    book.unmark("p1"); // too late to re-vote: its tally is gone, it stays voted
    expect(book.isVoted("p1")).toBe(true);
    expect(book.add(batch("p2", "a", ["red"]), 2000)).toBe("p2");
  });

  describe("with judges sampled per author", () => {
    const panel = new Set(["a", "b", "c", "d"]);
    const assignment = new JudgeAssignment(experiment, 1, panel, 1);
    const answer = (book: VoteBook, promptId: string) => {
      for (const au of panel) book.add(batch(promptId, au, [`${au}'s answer`]), 1000);
    };

    it("waits only for each author's assigned judges, and counts no other judge's verdict", () => {
      const book = new VoteBook(listedPrompts([prompt("p1")]), panel, voting, 60_000, assignment);
      answer(book, "p1");
      const judgeOf = (au: string) => assignment.judgesOf("p1", au)[0]!;
      // An unassigned judge's verdict is not counted, nor waited for.
      const outsider = [...panel].find((j) => j !== "a" && j !== judgeOf("a"))!;
      expect(book.add(verdict("p1", outsider, "a", [1]), 1000)).toBeUndefined();
      const score = { a: 5, b: 1, c: 3, d: 4 };
      for (const au of ["a", "b", "c"] as const) book.add(verdict("p1", judgeOf(au), au, [score[au]]), 1000);
      expect(book.ready("p1", panel)).toBe(false); // d's judge has not judged
      expect(book.add(verdict("p1", judgeOf("d"), "d", [score.d]), 1000)).toBe("p1");
      expect(book.ready("p1", panel)).toBe(true); // one verdict per author, not three
      const pairs = book.vote("p1", panel, false)!;
      expect(pairs.map((p) => [p.chosen.author, p.rejected.author])).toEqual([["a", "b"]]);
      expect(pairs[0]!.judges).toEqual([judgeOf("a"), judgeOf("b")].sort());
    });

    it("votes without an assigned judge that is dead or gave up (its share is not handed to another)", () => {
      const book = new VoteBook(listedPrompts([prompt("p1"), prompt("p2")]), panel, voting, 60_000, assignment);
      answer(book, "p1");
      // The judge of a's batch dies; everything else is judged.
      const dead = assignment.judgesOf("p1", "a")[0]!;
      for (const au of panel) if (au !== "a") for (const j of assignment.judgesOf("p1", au)) book.add(verdict("p1", j, au, [au === "b" ? 5 : 1]), 1000);
      expect(book.ready("p1", panel)).toBe(false);
      const alive = new Set([...panel].filter((p) => p !== dead));
      expect(book.ready("p1", alive)).toBe(true);
      // a's candidates have no judge left: they are not voted (minJudges 1), the others are.
      const pairs = book.vote("p1", alive, false)!;
      expect(pairs).toHaveLength(1);
      expect(pairs[0]!.chosen.author).toBe("b");
      expect([pairs[0]!.chosen.author, pairs[0]!.rejected.author]).not.toContain("a");
      // A judge that gave up on its assigned author is not waited for either.
      answer(book, "p2");
      const quitter = assignment.judgesOf("p2", "c")[0]!;
      for (const au of panel) if (au !== "c") for (const j of assignment.judgesOf("p2", au)) book.add(verdict("p2", j, au, [1]), 1000);
      expect(book.ready("p2", panel)).toBe(false);
      expect(book.excuse("p2", quitter, "c")).toBe("p2");
      expect(book.ready("p2", panel)).toBe(true);
    });
  });
});
