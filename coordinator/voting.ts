/**
 * Mean voting (Panel-of-Peers): each judge's 1–5 Likert scores are normalised to [0, 1]
 * ((s − 1) / 4) and combined over the five criteria (mean by default); a candidate's score is
 * the mean over its judges (the author excluded unless self-judging is on). Per prompt, the
 * best-scored candidate is chosen and the worst rejected, across the pooled panel or per author;
 * a pair is kept only if chosen ≥ minChosen and chosen − rejected ≥ minMargin.
 * Pure functions: the coordinator and `pop revote` share them.
 */
import { CRITERIA, PROTOCOL_VERSION, type CandidateBatch, type LikertScores, type PreferencePair, type Prompt, type Verdict, type VotingConfig } from "../protocol/mod.ts";

/** Everything known about one prompt: its candidate batches and the verdicts on them. */
export interface PromptTally {
  prompt: Prompt;
  /** Candidate batch per author. */
  batches: Map<string, CandidateBatch>;
  /** Verdict per `judge|author`. */
  verdicts: Map<string, Verdict>;
}

/** A candidate with its mean-voted score. */
export interface ScoredCandidate {
  candidateId: string;
  author: string;
  text: string;
  score: number;
  judges: string[];
}

export function newTally(prompt: Prompt): PromptTally {
  return { prompt, batches: new Map(), verdicts: new Map() };
}

export const verdictKey = (judge: string, author: string) => `${judge}|${author}`;

/** Adds a batch or verdict; returns false when it was already there (redelivery). */
export function addToTally(tally: PromptTally, message: CandidateBatch | Verdict): boolean {
  if (message.type === "candidates") {
    if (tally.batches.has(message.author)) return false;
    tally.batches.set(message.author, message);
    return true;
  }
  const key = verdictKey(message.judge, message.author);
  if (tally.verdicts.has(key)) return false;
  tally.verdicts.set(key, message);
  return true;
}

/** One judge's combined score for a candidate, in [0, 1]. */
export function combine(likert: LikertScores, rule: VotingConfig["combine"]): number {
  const norm = (s: number) => Math.min(1, Math.max(0, (s - 1) / 4));
  if (rule === "correctness") return norm(likert.correctness);
  return CRITERIA.reduce((sum, c) => sum + norm(likert[c]), 0) / CRITERIA.length;
}

/**
 * Scores every candidate of the prompt. `judges`, when given, limits whose verdicts count (e.g.
 * the panel still alive); candidates with fewer than `minJudges` counted judges are left out.
 */
export function scoreCandidates(tally: PromptTally, voting: VotingConfig, judges?: ReadonlySet<string>): ScoredCandidate[] {
  const out: ScoredCandidate[] = [];
  for (const batch of tally.batches.values()) {
    const perCandidate = new Map<string, { sum: number; judges: string[] }>();
    for (const verdict of tally.verdicts.values()) {
      if (verdict.author !== batch.author) continue;
      if (!voting.selfJudging && verdict.judge === batch.author) continue;
      if (judges && !judges.has(verdict.judge)) continue;
      for (const s of verdict.scores) {
        if (!s.likert) continue; // an abstention counts for nothing, not as a low score
        const acc = perCandidate.get(s.candidateId) ?? { sum: 0, judges: [] };
        acc.sum += combine(s.likert, voting.combine);
        acc.judges.push(verdict.judge);
        perCandidate.set(s.candidateId, acc);
      }
    }
    for (const c of batch.candidates) {
      const acc = perCandidate.get(c.candidateId);
      if (!acc || acc.judges.length < voting.minJudges) continue;
      out.push({ candidateId: c.candidateId, author: batch.author, text: c.text, score: acc.sum / acc.judges.length, judges: acc.judges.sort() });
    }
  }
  // A fixed order makes ties break the same way on every coordinator and every revote.
  return out.sort((a, b) => b.score - a.score || a.candidateId.localeCompare(b.candidateId));
}

/** The pairs one prompt yields under the voting rule (zero or one when pooled). */
export function votePrompt(tally: PromptTally, voting: VotingConfig, options: { judges?: ReadonlySet<string>; now?: number } = {}): PreferencePair[] {
  const scored = scoreCandidates(tally, voting, options.judges);
  const groups: [string | undefined, ScoredCandidate[]][] =
    voting.pairing === "pooled"
      ? [[undefined, scored]]
      : [...new Set(scored.map((c) => c.author))].sort().map((a) => [a, scored.filter((c) => c.author === a)]);
  const pairs: PreferencePair[] = [];
  const p = tally.prompt;
  for (const [forPeer, group] of groups) {
    if (group.length < 2) continue;
    const chosen = group[0]!;
    const rejected = group[group.length - 1]!;
    const margin = chosen.score - rejected.score;
    if (chosen.score < voting.minChosen || margin < voting.minMargin) continue;
    // Identical texts carry no preference, whatever their scores.
    if (chosen.text === rejected.text) continue;
    pairs.push({
      v: PROTOCOL_VERSION,
      type: "pair",
      experiment: p.experiment,
      iteration: p.iteration,
      pairId: pairIdFor(p.iteration, p.promptId, forPeer),
      promptId: p.promptId,
      question: p.question,
      images: p.images,
      chosen: { candidateId: chosen.candidateId, author: chosen.author, text: chosen.text, score: round(chosen.score) },
      rejected: { candidateId: rejected.candidateId, author: rejected.author, text: rejected.text, score: round(rejected.score) },
      margin: round(margin),
      judges: [...new Set([...chosen.judges, ...rejected.judges])].sort(),
      ...(forPeer ? { forPeer } : {}),
      createdAt: options.now ?? Date.now(),
    });
  }
  return pairs;
}

/** Deterministic pair id: republishing after a restart is deduplicated by the stream. */
export function pairIdFor(iteration: number, promptId: string, forPeer?: string): string {
  return forPeer ? `${iteration}:${promptId}:${forPeer}` : `${iteration}:${promptId}`;
}

const round = (x: number) => Math.round(Math.min(1, Math.max(0, x)) * 1e6) / 1e6;
