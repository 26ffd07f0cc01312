/**
 * The trainer contract's progress lines (./contract.ts): a trainer says how far it is, and with
 * which loss and margin, by printing a line per optimisation step on stdout or stderr:
 *
 *   [any prefix] step <done>/<total> [... loss <number>] [... margin <number>] [anything after]
 *
 * e.g. the Python trainer's `[simpo_lora] step 3/40 loss 0.6931 margin +0.0125 lr 1.00e-05 ...`
 * or `pop train: step 3/40 loss 0.693 margin 0.013`. The actor turns them into heartbeats while
 * the trainer runs and into the run's training curve afterwards. Lines are plain text so any
 * language can write them; a trainer that prints none still trains, it just shows no curve.
 */
import type { TrainStep } from "../models/contract.ts";

/** One progress line's content: `done` of `total` steps, with that step's figures where given. */
export interface StepLine {
  done: number;
  total: number;
  step?: TrainStep;
}

const STEP = /\bstep (\d+)\/(\d+)\b/;
const LOSS = /\bloss[ =:]+([-+]?[\d.]+(?:e[-+]?\d+)?|nan|inf)\b/i;
const MARGIN = /\bmargin[ =:]+([-+]?[\d.]+(?:e[-+]?\d+)?|nan|inf)\b/i;

/** The progress a line reports, or undefined for any other line. */
export function parseStepLine(line: string): StepLine | undefined {
  const m = STEP.exec(line);
  if (!m) return undefined;
  const done = Number(m[1]);
  const total = Number(m[2]);
  const rest = line.slice(m.index + m[0].length);
  const loss = Number(LOSS.exec(rest)?.[1] ?? NaN);
  const margin = Number(MARGIN.exec(rest)?.[1] ?? NaN);
  // Figures that are not finite (a diverged step) still count as progress, just not as a point.
  return { done, total, ...(Number.isFinite(loss) && Number.isFinite(margin) ? { step: { loss, margin } } : {}) };
}

/** The line {@link parseStepLine} reads, for trainers written in TypeScript. */
export function formatStepLine(done: number, total: number, step?: TrainStep): string {
  return `step ${done}/${total}${step ? ` loss ${step.loss.toFixed(4)} margin ${step.margin >= 0 ? "+" : ""}${step.margin.toFixed(4)}` : ""}`;
}
