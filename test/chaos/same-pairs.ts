/**
 * Are a disturbed run's pairs the ones an undisturbed coordinator would have voted from the same
 * messages? A vote counts the verdicts it has when it votes: every assigned judge's, or fewer
 * when a judge died or gave up part-way (some of its verdicts counted, the rest stored after the
 * vote by the judge once it was back). A pair records the judges of its two answers, not every
 * verdict the vote counted, so the check looks for a set of the prompt's stored verdicts that
 * explains it, all of them first. Voting the prompt again from the stored candidates and that set
 * (the coordinator's own voting, through deploy/observe/revote) must give every stored pair of the
 * prompt exactly: the same chosen and rejected candidates, scores and judges. A vote that counted
 * a verdict twice, a stale leader's prompt, or a message the streams do not hold shows here as a
 * pair no such set explains.
 */
import { revote } from "../../deploy/observe/revote/revote.ts";
import type { CandidateBatch, JudgingConfig, PreferencePair, Prompt, Verdict, VotingConfig } from "../../protocol/mod.ts";

/** A stored run, as the chaos checks read it. */
export interface StoredRun {
  experiment: string;
  voting: VotingConfig;
  judgesPerAuthor: JudgingConfig["judgesPerAuthor"];
  /** Each iteration's roll (its record's peers). */
  panels: ReadonlyMap<number, readonly string[]>;
  prompts: Prompt[];
  candidates: CandidateBatch[];
  verdicts: Verdict[];
  pairs: PreferencePair[];
}

const promptKey = (m: { iteration: number; promptId: string }) => `${m.iteration}|${m.promptId}`;
const pairKey = (p: PreferencePair) => `${p.iteration}|${p.pairId}`;
const describe = (p: PreferencePair) => `${p.promptId}${p.forPeer ? ` for ${p.forPeer}` : ""}: ${p.chosen.candidateId} over ${p.rejected.candidateId}`;

/** Subsets of a prompt's verdicts, all of them first; past 12 verdicts, whole judges' at a time. */
function* verdictSets(heard: readonly Verdict[]): Generator<Verdict[]> {
  const units: Verdict[][] =
    heard.length <= 12 ? heard.map((v) => [v]) : [...new Set(heard.map((v) => v.judge))].map((j) => heard.filter((v) => v.judge === j));
  for (let mask = (1 << units.length) - 1; mask >= 0; mask--) yield units.filter((_, i) => mask & (1 << i)).flat();
}

const same = (a: PreferencePair, b: PreferencePair) =>
  a.chosen.candidateId === b.chosen.candidateId &&
  a.rejected.candidateId === b.rejected.candidateId &&
  Math.abs(a.chosen.score - b.chosen.score) < 1e-9 &&
  Math.abs(a.rejected.score - b.rejected.score) < 1e-9 &&
  [...a.judges].sort().join() === [...b.judges].sort().join();

/** What differs between the stored pairs and a vote of the stored messages; empty when a set of the stored verdicts explains every pair. */
export function pairsNotRevoted(run: StoredRun, examples = 3): string[] {
  const byPrompt = <T extends { iteration: number; promptId: string }>(list: readonly T[]) => {
    const m = new Map<string, T[]>();
    for (const x of list) {
      const key = promptKey(x);
      if (!m.has(key)) m.set(key, []);
      m.get(key)!.push(x);
    }
    return m;
  };
  const [prompts, candidates, verdicts] = [byPrompt(run.prompts), byPrompt(run.candidates), byPrompt(run.verdicts)];
  const differ: string[] = [];
  let total = 0;
  for (const [key, stored] of byPrompt(run.pairs)) {
    total += stored.length;
    const prompt = prompts.get(key);
    if (!prompt) {
      differ.push(`${describe(stored[0]!)} (its prompt is not stored)`);
      continue;
    }
    const required = new Set(stored.flatMap((p) => p.judges));
    // A set without a verdict of every judge the pairs name cannot explain them.
    const heard = verdicts.get(key) ?? [];
    let explained = false;
    for (const counted of verdictSets(heard)) {
      if (![...required].every((j) => counted.some((v) => v.judge === j))) continue;
      const [row] = revote({ ...run, prompts: prompt, candidates: candidates.get(key) ?? [], verdicts: counted, pairs: [] });
      const again = new Map((row?.revoted ?? []).map((p) => [pairKey(p), p]));
      if (again.size === stored.length && stored.every((p) => again.has(pairKey(p)) && same(again.get(pairKey(p))!, p))) {
        explained = true;
        break;
      }
    }
    if (!explained) for (const p of stored) differ.push(describe(p));
  }
  return differ.length
    ? [
        `${differ.length} of ${total} pairs are not what a vote of the stored messages gives for any set of the verdicts, e.g. ${differ.slice(0, examples).join("; ")}`,
      ]
    : [];
}
