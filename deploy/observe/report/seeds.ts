/** The gain of several demo runs, one per prompt-pool seed (`npm run demo:seeds`). */
import type { Report } from "./shape.ts";

/** What one seed's run showed. */
export interface SeedResult {
  seed: number;
  panelFirst: number;
  panelLast: number;
  gain: number;
  /** Each member's average gain, first -> last iteration. */
  memberGain: Record<string, number>;
  /** Families a member lacked at iteration 0 (0.2 or more below the best member) and how far they moved. */
  gaps: { member: string; family: string; first: number; last: number; bestPeerLast: number }[];
  minutes: number;
}

/** The gains and gaps of one demo report. */
export function seedResult(seed: number, report: Report, minutes: number): SeedResult {
  const first = report.iterations[0]!;
  const last = report.iterations[report.iterations.length - 1]!;
  const memberGain = Object.fromEntries(report.peers.map((p) => [p, (last.average[p] ?? 0) - (first.average[p] ?? 0)]));
  const gaps: SeedResult["gaps"] = [];
  for (const family of report.suites) {
    const best = Math.max(...report.peers.map((p) => first.scores[p]?.[family] ?? 0));
    for (const member of report.peers) {
      const at0 = first.scores[member]?.[family] ?? 0;
      if (best - at0 < 0.2) continue;
      const bestPeerLast = Math.max(...report.peers.filter((p) => p !== member).map((p) => last.scores[p]?.[family] ?? 0));
      gaps.push({ member, family, first: at0, last: last.scores[member]?.[family] ?? 0, bestPeerLast });
    }
  }
  return { seed, panelFirst: first.panelAverage, panelLast: last.panelAverage, gain: last.panelAverage - first.panelAverage, memberGain, gaps, minutes };
}

/** The per-seed table with the mean and spread (sample standard deviation) of the gain. */
export function formatSeeds(results: SeedResult[]): string {
  const pts = (x: number) => (x * 100).toFixed(1);
  const signed = (x: number) => `${x >= 0 ? "+" : ""}${pts(x)}`;
  const members = [...new Set(results.flatMap((r) => Object.keys(r.memberGain)))].sort();
  const lines = [
    `${"seed".padEnd(6)}${"panel".padStart(15)}${"gain".padStart(7)}   ${members.map((m) => m.padStart(11)).join("")}   gaps (member family: iteration 0 -> last, best peer)   min`,
  ];
  for (const r of results) {
    const gaps = r.gaps.map((g) => `${g.member} ${g.family} ${pts(g.first)}->${pts(g.last)} (${pts(g.bestPeerLast)})`).join("; ");
    lines.push(
      `${String(r.seed).padEnd(6)}${`${pts(r.panelFirst)} -> ${pts(r.panelLast)}`.padStart(15)}${signed(r.gain).padStart(7)}   ${members.map((m) => signed(r.memberGain[m] ?? 0).padStart(11)).join("")}   ${gaps}   ${r.minutes.toFixed(1)}`,
    );
  }
  const gains = results.map((r) => r.gain);
  const mean = gains.reduce((a, b) => a + b, 0) / gains.length;
  const sd = gains.length > 1 ? Math.sqrt(gains.reduce((a, g) => a + (g - mean) ** 2, 0) / (gains.length - 1)) : 0;
  lines.push(
    `gain over ${results.length} seeds: mean ${signed(mean)} points, standard deviation ${pts(sd)}, lowest ${signed(Math.min(...gains))}, highest ${signed(Math.max(...gains))}`,
  );
  return lines.join("\n");
}
