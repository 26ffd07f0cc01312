/**
 * Mean voting (Panel-of-Peers): each judge's 1–5 Likert scores are normalised to [0, 1]
 * ((s − 1) / 4) and combined over the five criteria (mean by default); a candidate's score is
 * the mean over its judges (the author excluded unless self-judging is on), or under a robust
 * rule (`aggregate`) the median, a trimmed mean or an agreement-weighted mean. Per prompt, the
 * best-scored candidate is chosen and the worst rejected, across the pooled panel or per author;
 * a pair is kept only if chosen ≥ minChosen and chosen − rejected ≥ minMargin. Empty answers
 * are never paired.
 * Pure functions: the coordinator and `pop revote` share them.
 */
import {
  CRITERIA,
  scoresByAuthor,
  PROTOCOL_VERSION,
  type CandidateBatch,
  type LikertScores,
  type PreferencePair,
  type Prompt,
  type Verdict,
  type VotingConfig,
} from "../protocol/mod.ts";

/**
 * One judge's scores on one author's candidates of a prompt (a verdict covers one or more
 * authors), kept compact: an open prompt holds one of these per judge and author (N(N-1) at N
 * members), so the five Likert scores of each candidate are kept as numbers in one flat array
 * (CRITERIA order, NaN for an abstention) rather than as the parsed message's objects.
 */
export interface AuthorVerdict {
  judge: string;
  author: string;
  candidateIds: string[];
  /** `CRITERIA.length` scores per candidate id, in order; NaN where the judge abstained. */
  likert: Float64Array;
}

/** What a pair needs of one author's batch. */
export interface AuthorBatch {
  author: string;
  candidates: { candidateId: string; text: string }[];
}

/** Everything known about one prompt: its candidate batches and the verdicts on them. */
export interface PromptTally {
  prompt: Prompt;
  /** Candidate batch per author. */
  batches: Map<string, AuthorBatch>;
  /** Scores per `judge|author`. */
  verdicts: Map<string, AuthorVerdict>;
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
    tally.batches.set(message.author, { author: message.author, candidates: message.candidates.map((c) => ({ candidateId: c.candidateId, text: c.text })) });
    return true;
  }
  let added = false;
  for (const v of byAuthor(message)) {
    const key = verdictKey(v.judge, v.author);
    if (tally.verdicts.has(key)) continue;
    tally.verdicts.set(key, v);
    added = true;
  }
  return added;
}

/** A verdict's scores per author it covers. */
export function byAuthor(verdict: Verdict): AuthorVerdict[] {
  return [...scoresByAuthor(verdict).byAuthor].map(([author, scores]) => {
    const likert = new Float64Array(scores.length * CRITERIA.length).fill(NaN);
    scores.forEach((s, i) => {
      if (s.likert) CRITERIA.forEach((c, j) => (likert[i * CRITERIA.length + j] = s.likert![c]));
    });
    return { judge: verdict.judge, author, candidateIds: scores.map((s) => s.candidateId), likert };
  });
}

/**
 * Leaves out the scores of judges not assigned to their author (`pop revote --judges-per-author`
 * votes a stored run as if only those had judged). Authors' scores of their own candidates stay:
 * self-judging decides about those.
 */
export function dropUnassigned(tally: PromptTally, assigned: (judge: string, author: string) => boolean): void {
  for (const [key, v] of tally.verdicts) if (v.judge !== v.author && !assigned(v.judge, v.author)) tally.verdicts.delete(key);
}

/**
 * The fewest judges per candidate with which each rule can outvote one bad judge: the median of
 * two is their mean, `trimmed` trims nothing below three, and `agreement` cannot tell which of
 * two disagreeing judges to trust.
 */
export const ROBUST_MIN_JUDGES: Record<VotingConfig["aggregate"], number> = { mean: 1, median: 3, trimmed: 3, agreement: 3 };

/**
 * What is wrong with voting these settings when each candidate gets `judgesPerAuthor` judges
 * (plus its author under self-judging): a robust rule with too few judges to be robust, or a
 * `minJudges` no candidate can reach. One line each; none under "all".
 */
export function judgesPerAuthorWarnings(voting: VotingConfig, judgesPerAuthor: number | "all" | undefined): string[] {
  if (judgesPerAuthor === undefined || judgesPerAuthor === "all") return [];
  const perCandidate = judgesPerAuthor + (voting.selfJudging ? 1 : 0);
  const out: string[] = [];
  const need = ROBUST_MIN_JUDGES[voting.aggregate];
  if (perCandidate < need)
    out.push(
      `voting.aggregate '${voting.aggregate}' needs at least ${need} judges per candidate to outvote a bad judge, and judging.judgesPerAuthor ${judgesPerAuthor} gives ${perCandidate}: it votes like the plain mean`,
    );
  if (voting.minJudges > perCandidate)
    out.push(
      `voting.minJudges ${voting.minJudges} is more than the ${perCandidate} judges a candidate gets with judging.judgesPerAuthor ${judgesPerAuthor}: no candidate can be voted`,
    );
  return out;
}

/** One judge's combined score for a candidate, in [0, 1]. */
export function combine(likert: LikertScores, rule: VotingConfig["combine"]): number {
  return combineAt(
    CRITERIA.map((c) => likert[c]),
    0,
    rule,
  );
}

/** {@link combine} of the five scores (CRITERIA order) at `at` in a flat array. */
function combineAt(scores: ArrayLike<number>, at: number, rule: VotingConfig["combine"]): number {
  const norm = (s: number) => Math.min(1, Math.max(0, (s - 1) / 4));
  if (rule === "correctness") return norm(scores[at + CRITERIA.indexOf("correctness")]!);
  let sum = 0;
  for (let j = 0; j < CRITERIA.length; j++) sum += norm(scores[at + j]!);
  return sum / CRITERIA.length;
}

/** One judge's combined score of one candidate. */
interface JudgeScore {
  judge: string;
  score: number;
}

/**
 * Scores every candidate of the prompt. `judges`, when given, limits whose verdicts count (e.g.
 * the panel still alive); candidates with fewer than `minJudges` counted judges are left out.
 */
export function scoreCandidates(tally: PromptTally, voting: VotingConfig, judges?: ReadonlySet<string>): ScoredCandidate[] {
  const perCandidate = new Map<string, JudgeScore[]>();
  for (const verdict of tally.verdicts.values()) {
    if (!tally.batches.has(verdict.author)) continue;
    if (!voting.selfJudging && verdict.judge === verdict.author) continue;
    if (judges && !judges.has(verdict.judge)) continue;
    verdict.candidateIds.forEach((candidateId, i) => {
      const at = i * CRITERIA.length;
      if (Number.isNaN(verdict.likert[at])) return; // an abstention counts for nothing, not as a low score
      const list = perCandidate.get(candidateId) ?? [];
      list.push({ judge: verdict.judge, score: combineAt(verdict.likert, at, voting.combine) });
      perCandidate.set(candidateId, list);
    });
  }
  const weights = voting.aggregate === "agreement" ? agreementWeights(perCandidate) : undefined;
  const out: ScoredCandidate[] = [];
  for (const batch of tally.batches.values()) {
    for (const c of batch.candidates) {
      const list = perCandidate.get(c.candidateId);
      if (!list || list.length < voting.minJudges) continue;
      out.push({
        candidateId: c.candidateId,
        author: batch.author,
        text: c.text,
        score: aggregate(list, voting.aggregate, weights),
        judges: list.map((j) => j.judge).sort(),
      });
    }
  }
  // A fixed order makes ties break the same way on every coordinator and every revote.
  return out.sort((a, b) => b.score - a.score || a.candidateId.localeCompare(b.candidateId));
}

/** One candidate's score from its judges' scores under the rule. */
export function aggregate(list: JudgeScore[], rule: VotingConfig["aggregate"], weights?: ReadonlyMap<string, number>): number {
  const scores = list.map((j) => j.score).sort((a, b) => a - b);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  switch (rule) {
    case "median": {
      const mid = scores.length >> 1;
      return scores.length % 2 ? scores[mid]! : (scores[mid - 1]! + scores[mid]!) / 2;
    }
    case "trimmed": {
      const cut = scores.length >= 3 ? Math.max(1, Math.floor(scores.length * 0.2)) : 0;
      return mean(scores.slice(cut, scores.length - cut));
    }
    case "agreement": {
      const total = list.reduce((a, j) => a + (weights?.get(j.judge) ?? 1), 0);
      // Nobody agrees with anybody (or one judge): nothing to weigh by, so the plain mean.
      if (total <= 1e-9) return mean(scores);
      return list.reduce((a, j) => a + (weights?.get(j.judge) ?? 1) * j.score, 0) / total;
    }
    default:
      return mean(scores);
  }
}

/**
 * Per judge, how far to trust it on this prompt: the correlation of its scores with the median
 * of the other judges' scores over the candidates both scored, floored at 0. A judge that
 * inverts the others' order gets 0; one that scores everything alike while the others tell the
 * candidates apart gets 0; where the others cannot tell them apart either, or too few
 * candidates are shared, nothing is known and the judge keeps weight 1.
 */
export function agreementWeights(perCandidate: ReadonlyMap<string, JudgeScore[]>): Map<string, number> {
  const judges = new Set<string>();
  for (const list of perCandidate.values()) for (const j of list) judges.add(j.judge);
  const weights = new Map<string, number>();
  for (const judge of judges) {
    const mine: number[] = [];
    const others: number[] = [];
    for (const list of perCandidate.values()) {
      const own = list.find((j) => j.judge === judge);
      const rest = list
        .filter((j) => j.judge !== judge)
        .map((j) => j.score)
        .sort((a, b) => a - b);
      if (!own || rest.length === 0) continue;
      const mid = rest.length >> 1;
      mine.push(own.score);
      others.push(rest.length % 2 ? rest[mid]! : (rest[mid - 1]! + rest[mid]!) / 2);
    }
    weights.set(judge, trust(mine, others));
  }
  return weights;
}

function trust(mine: number[], others: number[]): number {
  if (mine.length < 2) return 1;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const mx = mean(mine);
  const my = mean(others);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < mine.length; i++) {
    sxy += (mine[i]! - mx) * (others[i]! - my);
    sxx += (mine[i]! - mx) ** 2;
    syy += (others[i]! - my) ** 2;
  }
  if (syy < 1e-12) return 1;
  if (sxx < 1e-12) return 0;
  return Math.max(0, sxy / Math.sqrt(sxx * syy));
}

/** The pairs one prompt yields under the voting rule (zero or one when pooled). */
export function votePrompt(tally: PromptTally, voting: VotingConfig, options: { judges?: ReadonlySet<string>; now?: number } = {}): PreferencePair[] {
  // An empty (or whitespace-only) answer never enters a pair, chosen or rejected: it teaches
  // nothing, and SimPO's length-normalised log-likelihood of a zero-token answer is undefined. The
  // prompt's other answers are still paired, so a pair is lost only where nothing else is left.
  const scored = scoreCandidates(tally, voting, options.judges).filter((c) => c.text.trim() !== "");
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
