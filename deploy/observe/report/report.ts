/**
 * The experiment report: member × suite × iteration accuracies with the panel average
 * (report.json), the pairs of each iteration as TRL-style preference records
 * (pairs-iter<N>.jsonl, images as PNG files) and an offline HTML page with the table and plots.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ImageRef, PreferencePair } from "../../../protocol/mod.ts";
import type { ExamplePair, Report, ReportSettings, TrainingRow } from "./shape.ts";
import type { StoredRun } from "./collect.ts";
import { renderHtml } from "./html.ts";
import { CostBook } from "../cost.ts";
import { encodePng } from "../../../actors/images/png-encode.ts";
import { trlPreferenceRecord } from "../../../actors/trainers/trl.ts";
import { attachPrecision } from "../precision/tally.ts";
import { formatPrecision } from "../precision/format.ts";
import { tinyWorldTruth, type TruthOf } from "../precision/truth.ts";

export type { ExamplePair, Report, ReportSettings, TrainingRow } from "./shape.ts";

/** `truthOf` grades the pairs where a prompt's right answer is known (default: the tiny world's pool). */
export function buildReport(run: StoredRun, truthOf: TruthOf = tinyWorldTruth): Report {
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
  attachPrecision(iterations, run.pairs, truthOf);
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
      ...(r.terms ? { terms: r.terms } : {}),
      ...(r.curve ? { curve: r.curve } : {}),
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
  return {
    experiment: run.experiment,
    peers,
    suites,
    ...(Object.keys(chance).length ? { chance } : {}),
    ...(settings ? { settings } : {}),
    training,
    cost,
    iterations,
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
        [peer.padEnd(14), String(it.iteration).padStart(4), ...report.suites.map((s) => pct(sc[s]).padStart(9)), pct(it.average[peer]).padStart(9)].join(" "),
      );
    }
  }
  lines.push("-".repeat(head.length));
  for (const it of report.iterations) {
    lines.push(
      `${"panel average".padEnd(14)} ${String(it.iteration).padStart(4)} ${pct(it.panelAverage)}${it.iteration === 0 ? "   (before training)" : `   (after SimPO on ${it.pairs} pairs)`}`,
    );
  }
  const precision = formatPrecision(report.iterations);
  if (precision) lines.push("", precision);
  return lines.join("\n");
}

/** A TRL-style (conversational, vision) preference record. */
export function trlRecord(p: PreferencePair, imagePaths: string[]) {
  return {
    ...trlPreferenceRecord(p.question, p.chosen.text, p.rejected.text, imagePaths),
    score_chosen: p.chosen.score,
    score_rejected: p.rejected.score,
    margin: p.margin,
    chosen_author: p.chosen.author,
    rejected_author: p.rejected.author,
    judges: p.judges,
    prompt_id: p.promptId,
    pair_id: p.pairId,
    iteration: p.iteration,
  };
}

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
 * Writes report.json, pairs-iter<N>.jsonl (+ images/) and report.html into `dir`. `suiteOf` names
 * the suite of a pair's question where the panel's world can tell (report.html picks examples by it);
 * `truthOf` grades the pairs where a prompt's right answer is known (report.json's `precision`).
 */
export async function writeReport(
  dir: string,
  run: StoredRun,
  fetchImage: (ref: ImageRef) => Promise<{ format?: ImageRef["format"]; width: number; height: number; data: Uint8Array } | undefined>,
  suiteOf: (question: string) => string | undefined = () => undefined,
  truthOf: TruthOf = tinyWorldTruth,
): Promise<Report> {
  mkdirSync(join(dir, "images"), { recursive: true });
  const report = buildReport(run, truthOf);
  writeFileSync(join(dir, "report.json"), JSON.stringify(report, null, 2) + "\n");
  const written = new Map<string, Uint8Array | undefined>();
  const byIteration = new Map<number, PreferencePair[]>();
  for (const p of run.pairs) byIteration.set(p.iteration, [...(byIteration.get(p.iteration) ?? []), p]);
  const trained = report.iterations.map((i) => i.iteration).filter((i) => i > 0);
  for (const iteration of [...new Set([...trained, ...byIteration.keys()])].sort((a, b) => a - b)) {
    const pairs = byIteration.get(iteration) ?? [];
    const lines: string[] = [];
    for (const p of pairs) {
      const paths: string[] = [];
      for (const ref of p.images) {
        // Raw pixels are written as PNG; a PNG or JPEG file from a user's pool as it is.
        const rel = `images/${ref.hash}.${ref.format === "jpeg" ? "jpg" : "png"}`;
        if (!written.has(ref.hash)) {
          const img = await fetchImage(ref);
          const file = img && (ref.format === "rgb8" ? encodePng(img.width, img.height, img.data) : img.data);
          if (file) writeFileSync(join(dir, rel), file);
          written.set(ref.hash, file);
        }
        paths.push(rel);
      }
      lines.push(JSON.stringify(trlRecord(p, paths)));
    }
    writeFileSync(join(dir, `pairs-iter${iteration}.jsonl`), lines.join("\n") + (lines.length ? "\n" : ""));
  }
  const examples = new Map<number, ExamplePair[]>();
  for (const [iteration, pairs] of byIteration) {
    examples.set(
      iteration,
      pickExamples(pairs, suiteOf).map((e) => {
        const ref = e.pair.images[0];
        const file = ref && written.get(ref.hash);
        return { ...e, ...(file ? { image: `data:image/${ref.format === "jpeg" ? "jpeg" : "png"};base64,${Buffer.from(file).toString("base64")}` } : {}) };
      }),
    );
  }
  writeFileSync(join(dir, "report.html"), renderHtml(report, examples));
  return report;
}
