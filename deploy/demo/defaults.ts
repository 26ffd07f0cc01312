/**
 * Defaults of the demo experiment with the shipped tiny panel, chosen so that three iterations
 * show the method's effect on two CPU cores in a few minutes. The voting thresholds are the
 * paper's (chosen >= 0.85, margin >= 0.75).
 */
import type { ExperimentConfig } from "../../protocol/mod.ts";

export const DEMO_DEFAULTS = {
  iterations: 3,
  promptsPerIteration: 2000,
  k: 4,
  temperature: 0.7,
  poolSeed: 7,
  overrides: {
    voting: { minChosen: 0.85, minMargin: 0.75, selfJudging: false, pairing: "pooled", combine: "mean", minJudges: 1, aggregate: "mean" },
    // An NLL term on the chosen answers (CPO-SimPO) made the tiny panel learn from few pairs
    // (docs/results/tiny-model-experiments.md has the simulation runs); sftWeight 0 is the paper's pure SimPO.
    // Batches of 16 pairs (twice the steps of 32) let the OCR-dumb member learn reading faster.
    training: { beta: 2.0, gamma: 1.0, learningRate: 1e-3, learningRateDecay: 0.5, epochs: 3, batchSize: 16, sftWeight: 1, judgeAnchor: 1, pairsFor: "same" },
    // The members do not answer in step: on two shared cores one drifts seconds behind another,
    // and with a 2 s linger 40% of the verdicts covered one author (a prompt judged in two small
    // calls). The protocol's 10 s keeps a prompt in one verdict; a live author's batch comes anyway.
    deadlines: { voteMs: 120_000, trainMs: 600_000, trainQuorum: 1, judgeLingerMs: 10_000 },
    heartbeat: { intervalMs: 1_000, lapseMs: 10_000 },
  } satisfies Partial<Pick<ExperimentConfig, "voting" | "training" | "deadlines" | "heartbeat">>,
};
