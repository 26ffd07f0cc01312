/** The chaos check that a run's pairs are what a vote of the stored messages they counted gives (test/chaos/same-pairs.ts). */
import { describe, expect, it } from "vitest";
import { addToTally, newTally, votePrompt } from "../../coordinator/voting.ts";
import { VotingConfig, type CandidateBatch, type PreferencePair, type Prompt, type Verdict } from "../../protocol/mod.ts";
import { pairsNotRevoted, type StoredRun } from "../chaos/same-pairs.ts";
import * as msg from "../support/messages.ts";

const experiment = "sp";
const panel = ["ann", "ben", "cat"];
const voting = VotingConfig.parse({ minChosen: 0, minMargin: 0 });

/** Three members, every one judging the others; ann's and ben's judging agree, cat prefers the second answer of each author. */
function run(prompts = 12): StoredRun {
  const ps: Prompt[] = [];
  const candidates: CandidateBatch[] = [];
  const verdicts: Verdict[] = [];
  for (let i = 0; i < prompts; i++) {
    const promptId = `q${i}`;
    ps.push(msg.prompt({ experiment, promptId, createdAt: 0 }));
    for (const author of panel)
      candidates.push(msg.candidates({ experiment, promptId, author, texts: [`${author} a ${i}`, `${author} b ${i}`], createdAt: 0 }));
    for (const judge of panel) {
      const others = panel.filter((a) => a !== judge);
      const scored = Object.fromEntries(others.map((a, n) => [a, judge === "cat" ? [1, 5] : [5 - n - (i % 2), 2]]));
      verdicts.push(msg.verdict({ experiment, promptId, judge, scored, createdAt: 0 }));
    }
  }
  const pairs: PreferencePair[] = ps.flatMap((p) => {
    const t = newTally(p);
    for (const m of [...candidates, ...verdicts]) if (m.promptId === p.promptId) addToTally(t, m);
    return votePrompt(t, voting, { now: 0 });
  });
  return { experiment, voting, judgesPerAuthor: "all", panels: new Map([[1, panel]]), prompts: ps, candidates, verdicts, pairs };
}

describe("pairs against a vote of the messages they counted", () => {
  it("finds nothing when the pairs are what the messages vote", () => {
    const r = run();
    expect(r.pairs).toHaveLength(12);
    expect(pairsNotRevoted(r)).toEqual([]);
  });

  it("explains a vote that went on without a judge whose verdicts came later", () => {
    const r = run();
    const withoutCat = r.prompts.flatMap((p) => {
      const tally = newTally(p);
      for (const m of [...r.candidates, ...r.verdicts.filter((v) => v.judge !== "cat")]) if (m.promptId === p.promptId) addToTally(tally, m);
      return votePrompt(tally, voting, { now: 0 });
    });
    // cat's stored verdicts would have changed these votes: they are not what all the verdicts give.
    expect(withoutCat.map((p) => p.chosen.candidateId)).not.toEqual(r.pairs.map((p) => p.chosen.candidateId));
    expect(pairsNotRevoted({ ...r, pairs: withoutCat })).toEqual([]);
  });

  it("explains a vote that counted part of a judge's verdicts (the rest stored after it)", () => {
    const r = run();
    // cat judged each prompt in two verdicts, one per author; each vote counted only the first.
    const split = r.verdicts.flatMap((v) =>
      v.judge !== "cat" ? [v] : v.authors.map((author) => ({ ...v, authors: [author], scores: v.scores.filter((s) => s.candidateId.includes(`:${author}:`)) })),
    );
    const firstOnly = split.filter((v) => v.judge !== "cat" || v.authors[0] === "ann");
    const pairs = r.prompts.flatMap((p) => {
      const tally = newTally(p);
      for (const m of [...r.candidates, ...firstOnly]) if (m.promptId === p.promptId) addToTally(tally, m);
      return votePrompt(tally, voting, { now: 0 });
    });
    expect(pairs.map((p) => p.chosen.score)).not.toEqual(r.pairs.map((p) => p.chosen.score));
    expect(pairsNotRevoted({ ...r, verdicts: split, pairs })).toEqual([]);
  });

  it("names a pair whose score no set of stored verdicts gives (a verdict counted twice, say)", () => {
    const r = run();
    const [first, ...rest] = r.pairs;
    const bumped = { ...first!, chosen: { ...first!.chosen, score: first!.chosen.score + 0.05 } };
    expect(pairsNotRevoted({ ...r, pairs: [bumped, ...rest] })[0]).toMatch(
      /^1 of 12 pairs are not what a vote .* gives for any set of the verdicts, e.g. q0: /,
    );
  });

  it("names a pair whose chosen or rejected answer a vote of its messages does not give", () => {
    const r = run();
    const [first, ...rest] = r.pairs;
    const swapped = { ...first!, chosen: first!.rejected, rejected: first!.chosen };
    const [line, ...more] = pairsNotRevoted({ ...r, pairs: [swapped, ...rest] });
    expect(more).toEqual([]);
    expect(line).toMatch(/^1 of 12 pairs are not .*q0: /);
  });

  it("names a pair that a vote of its messages does not give at all", () => {
    const r = run();
    const orphan = { ...r.pairs[0]!, promptId: "q99", pairId: "no-such-vote" };
    expect(pairsNotRevoted({ ...r, pairs: [...r.pairs, orphan] })).toEqual([expect.stringMatching(/^1 of 13 pairs .*q99: .*its prompt is not stored/)]);
  });
});
