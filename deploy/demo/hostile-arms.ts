/**
 * The figures of `npm run demo:hostile`: per arm (the all-honest panel, then the panel with a
 * hostile member under each voting rule) the honest members' gains, their mean against the
 * all-honest panel's, and the pair precision per iteration, as markdown tables.
 */
import { honestGain, type HonestGain } from "../observe/report/hostile.ts";
import { ALL_FAMILIES } from "../observe/precision/tally.ts";
import type { Report } from "../observe/report/report.ts";

/** What one demo run of the comparison showed. */
export interface ArmResult {
  /** "all honest" or the hostile member's mode. */
  arm: string;
  /** The voting rule. */
  rule: string;
  members: string[];
  honest: HonestGain;
  /** The all-families pair precision per trained iteration (absent where no pair was graded). */
  precision: { iteration: number; pairs: number; chosenRight: number; rejectedWrong: number; both: number }[];
  minutes: number;
}

/** One arm's figures from its demo report (its `hostile` mark says who is left out of the gain). */
export function armResult(arm: string, rule: string, report: Pick<Report, "peers" | "iterations" | "hostile">, minutes: number): ArmResult {
  const precision = report.iterations.flatMap((it) => {
    const row = it.precision?.[ALL_FAMILIES];
    return row && row.pairs > 0 ? [{ iteration: it.iteration, ...row }] : [];
  });
  return { arm, rule, members: [...report.peers], honest: honestGain(report.peers, report.iterations, report.hostile?.members), precision, minutes };
}

const signed = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}`;
const share = (n: number, of: number) => `${((n / of) * 100).toFixed(0)}%`;

/** An arm's mean honest gain as a share of `baseline`'s; undefined when the baseline gained nothing. */
export function gainRatio(arm: ArmResult, baseline: ArmResult): number | undefined {
  return baseline.honest.meanGain > 0 ? arm.honest.meanGain / baseline.honest.meanGain : undefined;
}

/**
 * The arm with a hostile member (every arm but `baseline`) whose honest members gained the most
 * on average; undefined when there is none.
 */
export function bestArm(arms: readonly ArmResult[], baseline: ArmResult): ArmResult | undefined {
  return arms
    .filter((a) => a !== baseline)
    .reduce<ArmResult | undefined>((best, a) => (!best || a.honest.meanGain > best.honest.meanGain ? a : best), undefined);
}

/** The gains table: one row per arm, one column per honest member, the mean and its ratio to `baseline`'s. */
export function formatGains(arms: readonly ArmResult[], baseline: ArmResult): string {
  const honest = [...new Set(arms.flatMap((a) => a.honest.honest))].sort();
  const lines = [
    `| panel | voting rule | ${honest.join(" | ")} | honest mean | of the all-honest mean | minutes |`,
    `|---|---|${honest.map(() => "---:|").join("")}---:|---:|---:|`,
  ];
  for (const a of arms) {
    const ratio = gainRatio(a, baseline);
    lines.push(
      `| ${a.arm} | ${a.rule} | ${honest.map((m) => (m in a.honest.gain ? signed(a.honest.gain[m]!) : "-")).join(" | ")} | **${signed(a.honest.meanGain)}** | ${ratio === undefined ? "-" : `${(ratio * 100).toFixed(0)}%`} | ${a.minutes.toFixed(1)} |`,
    );
  }
  return lines.join("\n");
}

/** The precision table: per arm and trained iteration, the graded pairs and the shares that teach right. */
export function formatPrecisionByArm(arms: readonly ArmResult[]): string {
  const iterations = [...new Set(arms.flatMap((a) => a.precision.map((p) => p.iteration)))].sort((x, y) => x - y);
  const lines = [`| panel | voting rule | ${iterations.map((i) => `iteration ${i}`).join(" | ")} |`, `|---|---|${iterations.map(() => "---|").join("")}`];
  for (const a of arms) {
    const cell = (i: number) => {
      const p = a.precision.find((x) => x.iteration === i);
      return p
        ? `${share(p.both, p.pairs)} both (${share(p.chosenRight, p.pairs)} chosen right, ${share(p.rejectedWrong, p.pairs)} rejected wrong; ${p.pairs} pairs)`
        : "-";
    };
    lines.push(`| ${a.arm} | ${a.rule} | ${iterations.map(cell).join(" | ")} |`);
  }
  return lines.join("\n");
}
