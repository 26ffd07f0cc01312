/**
 * What judging should cost, from the settings alone and from what a run's members answered. A
 * judge scores each candidate of each author it is assigned (protocol/judges.ts: m per prompt,
 * N − 1 under "all") in one request ("single") or one per criterion ("per-criterion"), and within
 * one model call an answer text repeated for the same prompt is judged once (judgeOnce).
 */
import { CRITERIA, JudgeAssignment, type CandidateBatch, type ExperimentConfig } from "../../../protocol/mod.ts";

export type JudgeMode = ExperimentConfig["judging"]["mode"];

/** Judge requests per criterion-set: 1 in single mode, one per criterion otherwise. */
export const requestsPerCandidate = (mode: JudgeMode) => (mode === "single" ? 1 : CRITERIA.length);

/** Judges per author: m, or N − 1 for "all" (and for any m of N − 1 or more). */
export const judgesOf = (peers: number, m: number | "all") => (m === "all" ? peers - 1 : Math.min(m, peers - 1));

/** Judge requests per prompt per member when every answer is distinct: m·k, times 5 per criterion. */
export function formulaRequests(peers: number, k: number, mode: JudgeMode, m: number | "all"): number {
  return judgesOf(peers, m) * k * requestsPerCandidate(mode);
}

/**
 * Judge requests per prompt per member that the members' actual answers call for: per judge and
 * prompt, the distinct answer texts among the authors it is assigned (assuming, as the actor does
 * when a prompt's batches arrive together, one model call per prompt).
 */
export function expectedRequests(
  config: Pick<ExperimentConfig, "experiment" | "judging">,
  iteration: number,
  panel: readonly string[],
  batches: readonly CandidateBatch[],
): number {
  const assignment = JudgeAssignment.of(config, { iteration, peers: [...panel] });
  const byPrompt = new Map<string, CandidateBatch[]>();
  for (const b of batches) if (b.iteration === iteration) byPrompt.set(b.promptId, [...(byPrompt.get(b.promptId) ?? []), b]);
  let requests = 0;
  for (const [promptId, list] of byPrompt) {
    for (const judge of assignment.panel) {
      const texts = new Set(list.filter((b) => assignment.assigned(promptId, judge, b.author)).flatMap((b) => b.candidates.map((c) => c.text)));
      requests += texts.size;
    }
  }
  return (requests * requestsPerCandidate(config.judging.mode)) / Math.max(1, panel.length * byPrompt.size);
}
