/**
 * A run with members that judge adversarially on purpose (`pop demo --hostile MODE`): the report
 * marks them and measures the panel by its honest members only, since a hostile member's own
 * benchmark says nothing about whether the panel still teaches.
 */

/** The members whose judging was hostile, and what the honest members gained (report.json's `hostile`). */
export interface HostileMark {
  /** Hostile member -> its judging mode (actors/models/hostile.ts). */
  members: Record<string, string>;
  /** The other members, sorted. */
  honest: string[];
  /** Each honest member's average, first -> last iteration (a fraction: 0.1 is 10 points). */
  gain: Record<string, number>;
  /** The mean of `gain` over the honest members: "honest members' mean gain". */
  meanGain: number;
}

/** What {@link honestGain} reads of a report's iterations. */
interface IterationAverages {
  average: Record<string, number>;
}

/** The honest members and their gains: the part of {@link HostileMark} every run has. */
export type HonestGain = Pick<HostileMark, "honest" | "gain" | "meanGain">;

/**
 * Each member's average gain, first -> last iteration, over the members not in `hostile` (all of
 * them when none is), and their mean. A member missing from the first or last iteration's
 * evaluations counts as no gain.
 */
export function honestGain(peers: readonly string[], iterations: readonly IterationAverages[], hostile: Readonly<Record<string, string>> = {}): HonestGain {
  const honest = peers.filter((p) => !Object.hasOwn(hostile, p)).sort();
  const first = iterations[0];
  const last = iterations[iterations.length - 1];
  const gain = Object.fromEntries(honest.map((p) => [p, (last?.average[p] ?? 0) - (first?.average[p] ?? 0)]));
  const meanGain = honest.length ? Object.values(gain).reduce((a, b) => a + b, 0) / honest.length : 0;
  return { honest, gain, meanGain };
}

/** The mark for `hostile` (member -> mode) among `peers`; undefined when none of them is hostile. */
export function hostileMark(
  peers: readonly string[],
  iterations: readonly IterationAverages[],
  hostile: Readonly<Record<string, string>>,
): HostileMark | undefined {
  const members = Object.fromEntries(Object.entries(hostile).filter(([p]) => peers.includes(p)));
  if (Object.keys(members).length === 0) return undefined;
  return { members, ...honestGain(peers, iterations, members) };
}

const signed = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}`;

/** One line for the text report: who judged hostile, and the honest members' gains. */
export function formatHostile(mark: HostileMark): string {
  const who = Object.entries(mark.members)
    .map(([p, mode]) => `${p} (${mode})`)
    .join(", ");
  const each = mark.honest.map((p) => `${p} ${signed(mark.gain[p] ?? 0)}`).join(", ");
  return `* hostile judge${Object.keys(mark.members).length > 1 ? "s" : ""}: ${who}; honest members' mean gain ${signed(mark.meanGain)} points (${each})`;
}
