/**
 * Recomputing a stored run's pairs from its verdicts under other voting settings or fewer judges
 * per author (`pop revote`), with no model: the coordinator's own voting functions on the stored
 * messages. Pure, so that tests drive it without a server.
 */
import { JudgeAssignment, type CandidateBatch, type PreferencePair, type Prompt, type Verdict, type VotingConfig } from "../../../protocol/mod.ts";
import { addToTally, dropUnassigned, newTally, votePrompt, type PromptTally } from "../../../coordinator/voting.ts";

/** A stored run, and how to vote it again. */
export interface RevoteInput {
  experiment: string;
  voting: VotingConfig;
  /** Count only the scores of judges this assignment names (protocol/judges.ts); "all": every judge's. */
  judgesPerAuthor: number | "all";
  /** Each iteration's panel (its record's peers); an iteration without one takes everyone seen in its messages. */
  panels: ReadonlyMap<number, readonly string[]>;
  prompts: Prompt[];
  candidates: CandidateBatch[];
  verdicts: Verdict[];
  pairs: PreferencePair[];
}

/** One iteration, stored and revoted. */
export interface RevoteRow {
  iteration: number;
  prompts: number;
  stored: number;
  revoted: PreferencePair[];
  /** Revoted pairs identical to a stored one (same prompt, pairing, chosen and rejected). */
  same: number;
}

/** Votes every stored prompt again; one row per iteration that has prompts or stored pairs, in order. */
export function revote(input: RevoteInput): RevoteRow[] {
  const tallies = new Map<string, PromptTally>();
  for (const p of input.prompts) tallies.set(`${p.iteration}|${p.promptId}`, newTally(p));
  const seen = new Map<number, Set<string>>();
  for (const m of [...input.candidates, ...input.verdicts]) {
    const t = tallies.get(`${m.iteration}|${m.promptId}`);
    if (!t) continue;
    addToTally(t, m);
    const s = seen.get(m.iteration) ?? new Set<string>();
    s.add(m.type === "candidates" ? m.author : m.judge);
    seen.set(m.iteration, s);
  }
  const assignments = new Map<number, JudgeAssignment>();
  const assignmentOf = (it: number) => {
    let a = assignments.get(it);
    if (!a) assignments.set(it, (a = new JudgeAssignment(input.experiment, it, input.panels.get(it) ?? seen.get(it) ?? [], input.judgesPerAuthor)));
    return a;
  };
  const revoted = new Map<number, PreferencePair[]>();
  const promptsOf = new Map<number, number>();
  for (const t of tallies.values()) {
    const { iteration, promptId } = t.prompt;
    // Also under "all": a verdict the coordinator refused as unassigned is still in the stream.
    const a = assignmentOf(iteration);
    dropUnassigned(t, (judge, author) => a.assigned(promptId, judge, author));
    const list = revoted.get(iteration) ?? [];
    list.push(...votePrompt(t, input.voting, { now: t.prompt.createdAt }));
    revoted.set(iteration, list);
    promptsOf.set(iteration, (promptsOf.get(iteration) ?? 0) + 1);
  }
  const stored = new Map<number, PreferencePair[]>();
  for (const p of input.pairs) {
    const list = stored.get(p.iteration) ?? [];
    list.push(p);
    stored.set(p.iteration, list);
  }
  const sig = (p: PreferencePair) => `${p.pairId}|${p.chosen.candidateId}|${p.rejected.candidateId}`;
  return [...new Set([...revoted.keys(), ...stored.keys()])]
    .sort((a, b) => a - b)
    .map((iteration) => {
      const before = new Set((stored.get(iteration) ?? []).map(sig));
      const after = revoted.get(iteration) ?? [];
      return { iteration, prompts: promptsOf.get(iteration) ?? 0, stored: before.size, revoted: after, same: after.filter((p) => before.has(sig(p))).length };
    });
}
