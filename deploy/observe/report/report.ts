/**
 * The experiment report: member × suite × iteration accuracies with the panel average
 * (report.json), the pairs of each iteration as TRL-style preference records
 * (pairs-iter<N>.jsonl, images as PNG files named by absolute paths) and an offline HTML page with the table and plots.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PreferencePair } from "../../../protocol/mod.ts";
import { REPORT_SCHEMA_VERSION, type ExamplePair, type Report, type ReportSettings, type ReportTimeline, type TrainingRow } from "./shape.ts";
import type { StoredRun } from "./collect.ts";
import { storedTimeline } from "./stored-timeline.ts";
import { provenance, type Provenance } from "../runs/provenance.ts";
import { writeRunScalars } from "../runs/write.ts";
import { renderHtml } from "./html.ts";
import { CostBook } from "../cost.ts";
import { ImageFiles, type FetchImage } from "../export/images.ts";
import { writePairsJsonl } from "../export/jsonl.ts";
import { attachPrecision } from "../precision/tally.ts";
import { formatPrecision } from "../precision/format.ts";
import { tinyWorldTruth, type TruthOf } from "../precision/truth.ts";
import { formatHostile, hostileMark } from "./hostile.ts";

export type { ExamplePair, Report, ReportSettings, ReportTimeline, TrainingPoint, TrainingRow } from "./shape.ts";

/** What {@link buildReport} takes besides the stored run. */
export interface ReportOptions {
  /** Default: this checkout's commit, now, and the versions of what runs here. */
  provenance?: Provenance;
  /** The time breakdown as a live follower measured it (the demo); default: from the stored run's times. */
  timeline?: ReportTimeline;
  /** Grades the pairs where a prompt's right answer is known (report.json's `precision`); default: the tiny world's pool. */
  truthOf?: TruthOf;
  /** Members that judge adversarially on purpose, member -> mode (`pop demo --hostile`): marked, and left out of the honest gain. */
  hostile?: Record<string, string>;
}

export function buildReport(run: StoredRun, options: ReportOptions = {}): Report {
  // The latest evaluation per (iteration, peer) wins: a re-evaluation after a crash replaces it.
  const byIter = new Map<number, Map<string, { suites: Record<string, number>; average: number }>>();
  for (const e of run.evaluations) {
    const m = byIter.get(e.iteration) ?? new Map();
    m.set(e.peer, { suites: e.suites, average: e.average });
    byIter.set(e.iteration, m);
  }
  const peers = [...new Set(run.evaluations.map((e) => e.peer))].sort();
  const suites = [...new Set(run.evaluations.flatMap((e) => Object.keys(e.suites)))];
  const pairCounts = new Map<number, number>();
  for (const p of run.pairs) pairCounts.set(p.iteration, (pairCounts.get(p.iteration) ?? 0) + 1);
  const iterations = [...byIter.keys()]
    .sort((a, b) => a - b)
    .map((iteration) => {
      const m = byIter.get(iteration)!;
      const scores: Record<string, Record<string, number>> = {};
      const average: Record<string, number> = {};
      for (const [peer, e] of [...m.entries()].sort()) {
        scores[peer] = e.suites;
        average[peer] = e.average;
      }
      const avgs = Object.values(average);
      return { iteration, scores, average, panelAverage: avgs.reduce((a, b) => a + b, 0) / Math.max(1, avgs.length), pairs: pairCounts.get(iteration) ?? 0 };
    });
  attachPrecision(iterations, run.pairs, options.truthOf ?? tinyWorldTruth);
  const chance: Record<string, number> = {};
  for (const e of run.evaluations) Object.assign(chance, e.chance ?? {});
  const training: TrainingRow[] = [];
  const seen = new Set<string>();
  for (const c of run.control) {
    if (c.event !== "training_done" || c.result.steps === 0 || seen.has(`${c.peer}\t${c.iteration}`)) continue;
    seen.add(`${c.peer}\t${c.iteration}`);
    const r = c.result;
    training.push({
      iteration: c.iteration,
      peer: c.peer,
      steps: r.steps,
      pairs: r.pairs,
      lossFirst: r.lossFirst,
      lossLast: r.lossLast,
      marginBefore: r.marginBefore,
      marginAfter: r.marginAfter,
      seconds: r.ms / 1000,
      ...(r.terms ? { terms: Object.fromEntries(Object.entries(r.terms).map(([k, [first, last]]) => [k, { first, last }])) } : {}),
      ...(r.curve ? { curve: r.curve.map(([step, loss, margin]) => ({ step, loss, margin })) } : {}),
    });
  }
  training.sort((a, b) => a.iteration - b.iteration || a.peer.localeCompare(b.peer));
  const book = new CostBook();
  const prompts = new Map<number, number>();
  for (const c of run.control) {
    if (c.event === "training_done") book.trainingDone(c);
    else if (c.event === "iteration_opened") prompts.set(c.iteration, c.prompts);
  }
  const cost = book.rows([], (n) => prompts.get(n) ?? 0);
  const settings: ReportSettings | undefined = run.config && {
    iterations: run.config.iterations,
    promptsPerIteration: run.config.promptsPerIteration,
    pool: run.config.pool.name,
    sampling: run.config.sampling,
    voting: run.config.voting,
    judging: run.config.judging,
    training: run.config.training,
  };
  const about = options.provenance ?? provenance(run.serverVersion);
  const hostile = options.hostile && hostileMark(peers, iterations, options.hostile);
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    commit: about.commit,
    date: about.date,
    versions: about.versions,
    experiment: run.experiment,
    peers,
    suites,
    ...(Object.keys(chance).length ? { chance } : {}),
    ...(settings ? { settings } : {}),
    training,
    cost,
    iterations,
    timeline: options.timeline ?? storedTimeline(run),
    ...(hostile ? { hostile } : {}),
  };
}

/** A plain-text table: one row per member and iteration, one column per suite. */
export function formatTable(report: Report): string {
  const pct = (x: number | undefined) => (x === undefined ? "   -" : (x * 100).toFixed(1).padStart(5));
  const head = ["member".padEnd(14), "iter", ...report.suites.map((s) => s.slice(0, 9).padStart(9)), "  average"].join(" ");
  const lines = [head, "-".repeat(head.length)];
  for (const peer of report.peers) {
    for (const it of report.iterations) {
      const sc = it.scores[peer];
      if (!sc) continue;
      lines.push(
        [
          (report.hostile?.members[peer] ? `${peer}*` : peer).padEnd(14),
          String(it.iteration).padStart(4),
          ...report.suites.map((s) => pct(sc[s]).padStart(9)),
          pct(it.average[peer]).padStart(9),
        ].join(" "),
      );
    }
  }
  lines.push("-".repeat(head.length));
  for (const it of report.iterations) {
    lines.push(
      `${"panel average".padEnd(14)} ${String(it.iteration).padStart(4)} ${pct(it.panelAverage)}${it.iteration === 0 ? "   (before training)" : `   (after SimPO on ${it.pairs} pairs)`}`,
    );
  }
  if (report.hostile) lines.push(formatHostile(report.hostile));
  const precision = formatPrecision(report.iterations);
  if (precision) lines.push("", precision);
  return lines.join("\n");
}

export { trlRecord } from "../export/jsonl.ts";

/** How many example pairs report.html shows per iteration (one per suite first). */
export const EXAMPLES_PER_ITERATION = 6;

/**
 * The example pairs of an iteration: the first pair of each suite (in prompt order), then more in
 * prompt order, up to {@link EXAMPLES_PER_ITERATION}.
 */
export function pickExamples(pairs: PreferencePair[], suiteOf: (question: string) => string | undefined): { pair: PreferencePair; suite?: string }[] {
  const sorted = [...pairs].sort((a, b) => a.promptId.localeCompare(b.promptId, "en", { numeric: true }));
  const picked: { pair: PreferencePair; suite?: string }[] = [];
  const suites = new Set<string>();
  for (const pair of sorted) {
    const suite = suiteOf(pair.question);
    if (suite === undefined || suites.has(suite)) continue;
    suites.add(suite);
    picked.push({ pair, suite });
  }
  for (const pair of sorted) {
    if (picked.length >= EXAMPLES_PER_ITERATION) break;
    if (!picked.some((p) => p.pair === pair)) {
      const suite = suiteOf(pair.question);
      picked.push({ pair, ...(suite ? { suite } : {}) });
    }
  }
  return picked.slice(0, EXAMPLES_PER_ITERATION);
}

/**
 * Writes report.json, the run's scalars (tensorboard/<member>/ event files and metrics.jsonl),
 * pairs-iter<N>.jsonl (+ images/, named by absolute paths: ../export/jsonl.ts) and report.html
 * into `dir`. `suiteOf` names the suite of a pair's question where the panel's world can tell
 * (report.html picks examples by it). `images` fetches the pairs' images; pass an
 * {@link ImageFiles} to share them with another writer (the demo's Parquet export).
 */
export async function writeReport(
  dir: string,
  run: StoredRun,
  images: FetchImage | ImageFiles,
  suiteOf: (question: string) => string | undefined = () => undefined,
  options: ReportOptions = {},
): Promise<Report> {
  const files = images instanceof ImageFiles ? images : new ImageFiles(images);
  mkdirSync(dir, { recursive: true });
  const report = buildReport(run, options);
  writeFileSync(join(dir, "report.json"), JSON.stringify(report, null, 2) + "\n");
  writeRunScalars(dir, report);
  const byIteration = new Map<number, PreferencePair[]>();
  for (const p of run.pairs) byIteration.set(p.iteration, [...(byIteration.get(p.iteration) ?? []), p]);
  // Every trained iteration gets a file, an empty one where it had no pairs.
  for (const i of report.iterations.map((i) => i.iteration).filter((i) => i > 0)) if (!byIteration.has(i)) byIteration.set(i, []);
  await writePairsJsonl(dir, byIteration, files);
  const examples = new Map<number, ExamplePair[]>();
  for (const [iteration, pairs] of byIteration) {
    if (pairs.length === 0) continue;
    const picked: ExamplePair[] = [];
    for (const e of pickExamples(pairs, suiteOf)) {
      const ref = e.pair.images[0];
      const file = ref && (await files.file(ref));
      picked.push({ ...e, ...(file ? { image: `data:image/${ref.format === "jpeg" ? "jpeg" : "png"};base64,${Buffer.from(file).toString("base64")}` } : {}) });
    }
    examples.set(iteration, picked);
  }
  writeFileSync(join(dir, "report.html"), renderHtml(report, examples));
  return report;
}
