/**
 * The shapes of report.json and of the example pairs report.html shows: kept apart from
 * report.ts, which builds them, so that html.ts (which report.ts calls) needs no import back.
 */
import type { ExperimentConfig, PreferencePair } from "../../../protocol/mod.ts";
import type { CostRow } from "../cost.ts";
import type { Versions } from "../runs/provenance.ts";
import type { IterationTiming } from "../timeline.ts";
import type { PrecisionTable } from "../precision/tally.ts";
import type { HostileMark } from "./hostile.ts";

/**
 * report.json's schema version. 1: unversioned (before #29): training curves and loss terms as
 * positional arrays, no provenance or timeline. 2: `schemaVersion`, `commit`, `date`, `versions`,
 * `timeline`, curve points as {step, loss, margin} and terms as {first, last}
 * (deploy/observe/report/load.ts reads both).
 */
export const REPORT_SCHEMA_VERSION = 2;

/** The shape of report.json (schema version 2). */
export interface Report {
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  /** The commit of the code that wrote the report (`git rev-parse HEAD`), null where unknown. */
  commit: string | null;
  /** When the report was written (ISO 8601); null only in a v1 report read back. */
  date: string | null;
  /** null only in a v1 report read back. */
  versions: Versions | null;
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
  /** Where the wall time went, per iteration and phase (what the demo prints as "where the time went"). */
  timeline: ReportTimeline;
  /** Members that judged adversarially on purpose and the honest members' gain (`pop demo --hostile`); absent otherwise. */
  hostile?: HostileMark;
}

/**
 * The run's time breakdown. The demo gives its start and the moment the report was built;
 * `pop report` the first and last control event's times.
 */
export interface ReportTimeline {
  /** Epoch ms. */
  startedAt?: number;
  /** Epoch ms. */
  endedAt?: number;
  iterations: IterationTiming[];
}

/** One point of a training curve. */
export interface TrainingPoint {
  step: number;
  loss: number;
  margin: number;
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
  /** Each loss term's value at the first and the last step, unweighted. */
  terms?: Record<string, { first: number; last: number }>;
  /** The training curve (thinned), where the backend reports it. */
  curve?: TrainingPoint[];
}

/** A pair shown in report.html, with its first image inlined (the page stays one offline file). */
export interface ExamplePair {
  pair: PreferencePair;
  suite?: string;
  /** A data: URL of the PNG, absent when the image could not be fetched. */
  image?: string;
}
