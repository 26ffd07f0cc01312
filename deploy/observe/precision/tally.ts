/**
 * Pair precision: how often a pair teaches the right thing, where the truth of its prompt is
 * known. Per iteration and family (suite): how many pairs were graded, how many have a right
 * chosen answer, a wrong rejected answer, and both (the pair pushes towards the truth and away
 * from an error). Observation only: the panel never sees these numbers.
 */
import type { PreferencePair } from "../../../protocol/mod.ts";
import { gradeReply } from "../../../actors/evaluation/scoring.ts";
import type { TruthOf } from "./truth.ts";

/** The key of the all-families row of a {@link PrecisionTable}. */
export const ALL_FAMILIES = "all";

/**
 * Counts of one family's graded pairs (share = count / `pairs`). Pairs whose prompt's truth is
 * unknown are not counted.
 */
export interface PrecisionRow {
  pairs: number;
  chosenRight: number;
  rejectedWrong: number;
  both: number;
}

/** One iteration's rows by family, with the {@link ALL_FAMILIES} row over them. */
export type PrecisionTable = Record<string, PrecisionRow>;

/** How one pair grades against the truth: undefined where the truth of its prompt is unknown. */
export interface PairGrade {
  suite: string;
  chosenRight: boolean;
  rejectedRight: boolean;
}

/** Grades a pair's chosen and rejected answers against its prompt's truth. */
export function gradePair(pair: Pick<PreferencePair, "promptId" | "question" | "images" | "chosen" | "rejected">, truthOf: TruthOf): PairGrade | undefined {
  const truth = truthOf(pair);
  if (!truth) return undefined;
  return { suite: truth.suite, chosenRight: gradeReply(pair.chosen.text, truth.expected), rejectedRight: gradeReply(pair.rejected.text, truth.expected) };
}

const emptyRow = (): PrecisionRow => ({ pairs: 0, chosenRight: 0, rejectedWrong: 0, both: 0 });

/** Counts graded pairs per iteration and family as they come (each pair once, by the caller). */
export class PrecisionTally {
  private readonly byIteration = new Map<number, PrecisionTable>();

  add(iteration: number, grade: PairGrade): void {
    const table = this.byIteration.get(iteration) ?? {};
    this.byIteration.set(iteration, table);
    // A suite that happens to be called "all" stays apart from the all-families row.
    const suite = grade.suite === ALL_FAMILIES ? `${ALL_FAMILIES} (suite)` : grade.suite;
    for (const key of [suite, ALL_FAMILIES]) {
      const row = (table[key] ??= emptyRow());
      row.pairs++;
      if (grade.chosenRight) row.chosenRight++;
      if (!grade.rejectedRight) row.rejectedWrong++;
      if (grade.chosenRight && !grade.rejectedRight) row.both++;
    }
  }

  /** The table of an iteration (families sorted, the all-families row last), undefined when none of its pairs was graded. */
  table(iteration: number): PrecisionTable | undefined {
    const t = this.byIteration.get(iteration);
    return t && ordered(Object.fromEntries(Object.entries(t).map(([k, row]) => [k, { ...row }])));
  }

  /** Every iteration with graded pairs, in order. */
  iterations(): number[] {
    return [...this.byIteration.keys()].sort((a, b) => a - b);
  }

  /** The rows summed over every iteration. */
  total(): PrecisionTable | undefined {
    return this.byIteration.size ? sumTables([...this.byIteration.values()]) : undefined;
  }
}

/** Rows added family by family. */
function sumTables(tables: PrecisionTable[]): PrecisionTable {
  const sum: PrecisionTable = {};
  for (const t of tables)
    for (const [family, row] of Object.entries(t)) {
      const s = (sum[family] ??= emptyRow());
      s.pairs += row.pairs;
      s.chosenRight += row.chosenRight;
      s.rejectedWrong += row.rejectedWrong;
      s.both += row.both;
    }
  return ordered(sum);
}

/** The families sorted, the all-families row last. */
function ordered(table: PrecisionTable): PrecisionTable {
  const families = Object.keys(table)
    .filter((k) => k !== ALL_FAMILIES)
    .sort();
  return Object.fromEntries([...families, ALL_FAMILIES].map((k) => [k, table[k]!]));
}

/** The precision of stored pairs per iteration (iterations with no graded pair are left out). */
export function pairPrecision(pairs: Iterable<PreferencePair>, truthOf: TruthOf): Map<number, PrecisionTable> {
  const tally = new PrecisionTally();
  for (const p of pairs) {
    const grade = gradePair(p, truthOf);
    if (grade) tally.add(p.iteration, grade);
  }
  return new Map(tally.iterations().map((i) => [i, tally.table(i)!]));
}

/**
 * Sets each report iteration's `precision` from the run's pairs (an iteration none of whose pairs
 * could be graded gets none). Pairs stored twice count once.
 */
export function attachPrecision(iterations: { iteration: number; precision?: PrecisionTable }[], pairs: readonly PreferencePair[], truthOf: TruthOf): void {
  const once = new Map(pairs.map((p) => [p.pairId, p]));
  const byIteration = pairPrecision(once.values(), truthOf);
  for (const it of iterations) {
    const table = byIteration.get(it.iteration);
    if (table) it.precision = table;
  }
}
