/**
 * A small local version of PoP mean voting (the distributed coordinator does the same over NATS):
 * R(y) = mean over judges other than y's author of the mean of the five normalised scores;
 * pooled across the panel, chosen = highest R, rejected = lowest R, kept when
 * R(chosen) >= minChosen and R(chosen) - R(rejected) >= minGap.
 */
import { CRITERIA, type LikertScores } from "../../protocol/mod.ts";

export interface Candidate {
  promptId: string;
  author: string;
  answer: string;
  /** Scores by judge name. */
  scores: Record<string, LikertScores>;
}

export interface VoteOptions {
  minChosen: number;
  minGap: number;
}
export const VOTE_DEFAULTS: VoteOptions = { minChosen: 0.85, minGap: 0.75 };

export function reward(c: Candidate): number {
  const judges = Object.keys(c.scores).filter((j) => j !== c.author);
  if (!judges.length) return NaN;
  let sum = 0;
  for (const j of judges) sum += CRITERIA.reduce((a, k) => a + (c.scores[j]![k] - 1) / 4, 0) / CRITERIA.length;
  return sum / judges.length;
}

export interface VotedPair {
  promptId: string;
  chosen: Candidate;
  rejected: Candidate;
  rChosen: number;
  rRejected: number;
}

/** Pairs per prompt (in order of first appearance), filtered by the thresholds. */
export function votePairs(cands: Candidate[], opts: VoteOptions = VOTE_DEFAULTS): { pairs: VotedPair[]; prompts: number } {
  const by = new Map<string, { c: Candidate; r: number }[]>();
  for (const c of cands) {
    const r = reward(c);
    if (Number.isNaN(r)) continue;
    (by.get(c.promptId) ?? by.set(c.promptId, []).get(c.promptId)!).push({ c, r });
  }
  const pairs: VotedPair[] = [];
  for (const [promptId, list] of by) {
    let hi = list[0]!, lo = list[0]!;
    for (const x of list) {
      if (x.r > hi.r) hi = x;
      if (x.r < lo.r) lo = x;
    }
    if (hi.r >= opts.minChosen && hi.r - lo.r >= opts.minGap && hi.c.answer !== lo.c.answer) {
      pairs.push({ promptId, chosen: hi.c, rejected: lo.c, rChosen: hi.r, rRejected: lo.r });
    }
  }
  return { pairs, prompts: by.size };
}
