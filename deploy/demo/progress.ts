/** The demo's progress lines: the commands to watch it, and an iteration's answers and judgements against their totals. */
import { timeToGo } from "../cli/progress.ts";
import { expectedCounts } from "../observe/watch/state.ts";

/** A word as a POSIX shell reads it: quoted only where it has to be. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The `pop watch` and `pop dashboard` command lines that follow this run, ready to paste. */
export function watchCommands(server: string, nkey: string, experiment: string): string[] {
  const target = `--server ${shellWord(server)} --nkey ${shellWord(nkey)} --experiment ${shellWord(experiment)}`;
  return [`pop watch ${target}`, `pop dashboard ${target}`];
}

/** An opened iteration as the demo saw it (its iteration_opened event). */
export interface OpenedIteration {
  iteration: number;
  prompts: number;
  peers: string[];
  openedAt: number;
}

/**
 * `iteration 2: answers 120 of 300, judgements 200 of 600, 15 pairs, about 1 min to go`. The
 * totals are pop watch's ({@link expectedCounts}); the time to go comes from the pace since the
 * iteration opened, over answering and judging together (judging trails answering by little).
 */
export function iterationLine(
  it: OpenedIteration,
  done: { candidates: number; judgements: number; pairs: number },
  judgesPerAuthor: number | "all",
  now: number,
): string {
  const total = expectedCounts(it, judgesPerAuthor);
  const share = (total.candidates ? done.candidates / total.candidates : 1) / 2 + (total.verdicts ? done.judgements / total.verdicts : 1) / 2;
  const elapsed = now - it.openedAt;
  const eta = share > 0.02 && share < 1 && elapsed > 0 ? `, ${timeToGo((elapsed / share) * (1 - share))}` : "";
  return `  iteration ${it.iteration}: answers ${done.candidates} of ${total.candidates}, judgements ${done.judgements} of ${total.verdicts}, ${done.pairs} pairs${eta}`;
}
