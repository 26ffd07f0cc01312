/** `pop revote`'s core (deploy/observe/revote/revote.ts): voting a stored run again as if fewer judges per author had been assigned. */
import { describe, expect, it } from "vitest";
import { judgesPerAuthorWarnings, addToTally, newTally, votePrompt } from "../../coordinator/voting.ts";
import { revote } from "../../deploy/observe/revote/revote.ts";
import { JudgeAssignment, VotingConfig, type CandidateBatch, type PreferencePair, type Prompt, type Verdict } from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";

const experiment = "rv";
const panel = ["ann", "ben", "cat", "dan", "eve"];
const voting = VotingConfig.parse({ minChosen: 0, minMargin: 0 });

/**
 * A run where every member judged every other: each author's two answers, a good and a bad one;
 * the honest judges score them 5 and 1, `eve` inverts every score.
 */
function fullRun(prompts = 40) {
  const ps: Prompt[] = [];
  const cands: CandidateBatch[] = [];
  const verdicts: Verdict[] = [];
  for (let i = 0; i < prompts; i++) {
    const promptId = `q${i}`;
    ps.push(msg.prompt({ experiment, promptId, createdAt: 0 }));
    // Authors differ in how good their good answer is, so the pooled pair depends on who judged.
    for (const author of panel)
      cands.push(msg.candidates({ experiment, promptId, author, texts: [`${author} good ${i}`, `${author} bad ${i}`], createdAt: 0 }));
    for (const judge of panel) {
      const scored = Object.fromEntries(panel.filter((a) => a !== judge).map((a, n) => [a, judge === "eve" ? [1, 5] : [5 - (n % 2), 1]]));
      verdicts.push(msg.verdict({ experiment, promptId, judge, scored, createdAt: 0 }));
    }
  }
  const pairs: PreferencePair[] = ps.flatMap((p) => {
    const t = newTally(p);
    for (const m of [...cands, ...verdicts]) if (m.promptId === p.promptId) addToTally(t, m);
    return votePrompt(t, voting, { now: 0 });
  });
  return { prompts: ps, candidates: cands, verdicts, pairs };
}

describe("revote", () => {
  const run = fullRun();
  const input = { experiment, voting, panels: new Map([[1, panel]]), ...run };

  it("gives the stored pairs back with every judge counted", () => {
    const [row, ...rest] = revote({ ...input, judgesPerAuthor: "all" });
    expect(rest).toEqual([]);
    expect(row).toMatchObject({ iteration: 1, prompts: 40, stored: 40, same: 40 });
    expect(row!.revoted).toHaveLength(40);
  });

  it("counts only the assigned judges' scores with fewer judges per author, and says how many pairs stay the same", () => {
    const [row] = revote({ ...input, judgesPerAuthor: 1 });
    const assignment = new JudgeAssignment(experiment, 1, panel, 1);
    for (const p of row!.revoted) {
      const allowed = new Set([...assignment.judgesOf(p.promptId, p.chosen.author), ...assignment.judgesOf(p.promptId, p.rejected.author)]);
      expect(
        p.judges.every((j) => allowed.has(j)),
        `${p.pairId}: ${p.judges.join()}`,
      ).toBe(true);
      expect(p.judges.length).toBeLessThanOrEqual(2);
    }
    // eve alone judges some authors now: her inverted scores change those prompts' pairs.
    expect(row!.same).toBeGreaterThan(0);
    expect(row!.same).toBeLessThan(row!.stored);
    // The same input, the same answer (the assignment is a pure function).
    expect(revote({ ...input, judgesPerAuthor: 1 })[0]!.revoted.map((p) => p.chosen.candidateId)).toEqual(row!.revoted.map((p) => p.chosen.candidateId));
  });

  it("takes the panel from the messages when an iteration has no record", () => {
    const [withRecord] = revote({ ...input, judgesPerAuthor: 2 });
    const [without] = revote({ ...input, panels: new Map(), judgesPerAuthor: 2 });
    expect(without!.revoted).toEqual(withRecord!.revoted);
  });
});

describe("warnings about too few judges per author", () => {
  it("warns when a robust rule gets fewer judges than it needs, or minJudges cannot be reached", () => {
    expect(judgesPerAuthorWarnings(voting, "all")).toEqual([]);
    expect(judgesPerAuthorWarnings(voting, 1)).toEqual([]); // the mean needs no minimum
    for (const aggregate of ["median", "trimmed", "agreement"] as const) {
      expect(judgesPerAuthorWarnings({ ...voting, aggregate }, 2)).toHaveLength(1);
      expect(judgesPerAuthorWarnings({ ...voting, aggregate }, 3)).toEqual([]);
      expect(judgesPerAuthorWarnings({ ...voting, aggregate, selfJudging: true }, 2)).toEqual([]); // the author's own makes three
    }
    expect(judgesPerAuthorWarnings({ ...voting, minJudges: 3 }, 2)[0]).toMatch(/no candidate can be voted/);
  });
});
