/**
 * The shapes of report.json and of the example pairs report.html shows: kept apart from
 * report.ts, which builds them, so that html.ts (which report.ts calls) needs no import back.
 */
import type { ExperimentConfig, PreferencePair } from "../../../protocol/mod.ts";
import type { CostRow } from "../cost.ts";
import type { PrecisionTable } from "../precision/tally.ts";

/** The shape of report.json. */
export interface Report {
  experiment: string;
  peers: string[];
  suites: string[];
  /** Accuracy of guessing per suite, where the members' benchmark says. */
  chance?: Record<string, number>;
  /** The run's settings (absent when the server had none stored). */
  settings?: ReportSettings;
  /** Each member's training per iteration, as its training_done event reported it (absent in older reports). */
  training?: TrainingRow[];
  /**
   * Model cost per iteration, member and phase, and per prompt of the iteration, as each
   * member's training_done event counted it (absent in older reports; see deploy/observe/cost.ts).
   */
  cost?: CostRow[];
  iterations: {
    iteration: number;
    scores: Record<string, Record<string, number>>;
    average: Record<string, number>;
    panelAverage: number;
    pairs: number;
    /**
     * Pair precision of the iteration's pairs per family, plus an `all` row: counts of graded pairs
     * and of those whose chosen answer is right, rejected answer wrong, and both (absent where no
     * pair's truth is known; see deploy/observe/precision/).
     */
    precision?: PrecisionTable;
  }[];
}

export interface ReportSettings {
  iterations: number;
  promptsPerIteration: number;
  pool: string;
  sampling: ExperimentConfig["sampling"];
  voting: ExperimentConfig["voting"];
  /** Absent in reports written before judging settings existed. */
  judging?: ExperimentConfig["judging"];
  training: ExperimentConfig["training"];
}

export interface TrainingRow {
  iteration: number;
  peer: string;
  steps: number;
  pairs: number;
  lossFirst: number;
  lossLast: number;
  marginBefore: number;
  marginAfter: number;
  seconds: number;
  terms?: Record<string, [number, number]>;
  /** [step, loss, margin] (thinned), where the backend reports it. */
  curve?: [number, number, number][];
}

/** A pair shown in report.html, with its first image inlined (the page stays one offline file). */
export interface ExamplePair {
  pair: PreferencePair;
  suite?: string;
  /** A data: URL of the PNG, absent when the image could not be fetched. */
  image?: string;
}
