/**
 * Each counted judge's own score of a pair's chosen and rejected answers, from the stored
 * verdicts, combined over the five criteria by the run's rule (coordinator/voting.ts): what the
 * pair's mean-voted scores were made of.
 */
import { CRITERIA, type PreferencePair, type Verdict, type VotingConfig } from "../../../protocol/mod.ts";
import { combine } from "../../../coordinator/voting.ts";

/** One judge's combined score in [0, 1] of a pair's two answers; null where it did not score one (its own answer, or it abstained). */
export interface JudgeScore {
  judge: string;
  chosen: number | null;
  rejected: number | null;
}

/** How {@link judgeScoresOf}'s map names a pair. */
export const pairKey = (p: Pick<PreferencePair, "iteration" | "pairId">): string => `${p.iteration}|${p.pairId}`;

/** The judge scores of each pair, by "iteration|pair id", the judges in the pair's order. */
export function judgeScoresOf(
  pairs: readonly PreferencePair[],
  verdicts: readonly Verdict[],
  voting: Pick<VotingConfig, "combine" | "selfJudging">,
): Map<string, JudgeScore[]> {
  // "iteration|candidate id" -> judge -> combined score, only for the candidates some pair holds
  const key = (iteration: number, candidateId: string) => `${iteration}|${candidateId}`;
  const wanted = new Set(pairs.flatMap((p) => [key(p.iteration, p.chosen.candidateId), key(p.iteration, p.rejected.candidateId)]));
  const scores = new Map<string, Map<string, number>>();
  for (const v of verdicts) {
    for (const s of v.scores) {
      const k = key(v.iteration, s.candidateId);
      if (!s.likert || !wanted.has(k) || CRITERIA.some((c) => s.likert![c] === undefined)) continue;
      const byJudge = scores.get(k) ?? new Map<string, number>();
      // A redelivered verdict is the same verdict: the first one stays, as in the vote.
      if (!byJudge.has(v.judge)) byJudge.set(v.judge, combine(s.likert, voting.combine));
      scores.set(k, byJudge);
    }
  }
  const out = new Map<string, JudgeScore[]>();
  for (const p of pairs) {
    // An author's score of its own answer counts only under self-judging, as in the vote.
    const of = (side: PreferencePair["chosen"], judge: string) =>
      judge === side.author && !voting.selfJudging ? null : (scores.get(key(p.iteration, side.candidateId))?.get(judge) ?? null);
    out.set(
      pairKey(p),
      p.judges.map((judge) => ({ judge, chosen: of(p.chosen, judge), rejected: of(p.rejected, judge) })),
    );
  }
  return out;
}
