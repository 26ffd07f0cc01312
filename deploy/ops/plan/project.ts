/**
 * `pop plan`'s projection: from each member's calibration, the requests and model time of an
 * iteration and of the whole run, per member and phase. Pure: the same calibration gives the
 * projection for any judging mode's counts and any judges per author.
 *
 * Counts per prompt and member (N members, m judges per author, "all" = N − 1, k candidates):
 * answering is 1 request (n = k); judging is m·k candidates (+k with voting.selfJudging), one
 * request each in "single" mode and five in "per-criterion". Those are upper bounds: the actor
 * judges a repeated (prompt, answer) once (actors/models/judge-once.ts), so the time is
 * projected from the distinct candidates the calibration's own answers give under the real
 * judge assignment (protocol/judges.ts).
 *
 * Time: the calibration ran every member at once, each answering and judging side by side at
 * the concurrency the actor runs at, so what members sharing a server (or a host) cost each
 * other is in each one's figures. A pass of S prompts took W = F + S·t: F the pipeline's fill
 * and drain (the first answer has nothing to overlap with, the last judgement neither), modelled
 * as one answer's plus one judgement's measured latency; t the steady time per prompt, split
 * between the phases by their requests' seconds. An iteration of P prompts takes F + P·t' per
 * member (t' with this projection's distinct candidates to judge), the slowest member bounds it,
 * and the training time the user gives is added.
 *
 * Shared host: where model servers run on this machine (./host-cpu.ts finds them by port), the
 * run adds processes the calibration did not have beside them: each actor's work beyond its
 * model client (decoding and acknowledging the peers' batches, publishing), the coordinator and
 * the nats-server. Measured on this machine (npm run bench:cost -- --parts plan), they use about
 * {@link PANEL_CPU_PER_CLIENT_CPU} times the CPU the calibration's clients did per prompt: E.
 * Over the pass's W seconds the servers and clients used C CPU-seconds, the machine left I cores
 * idle, and other processes used the rest. E first fills the idle cores; what is left competes
 * for the busy ones, where the kernel shares time by demand, so it lengthens the model work by
 * its share of what ran: f = 1 + max(0, E − I·W) / C · C / (C + others). A GPU server on an idle
 * host keeps f = 1; CPU-bound servers on a host of their own get 1 + E / C; on a host busy with
 * other work the panel's extra processes mostly take their time from that work.
 * The coordinator's voting and the hand-off to training otherwise run beside the model work and
 * are left out (under a second an iteration here).
 */
import { JudgeAssignment } from "../../../protocol/judges.ts";
import { CRITERIA, type JudgingMode } from "../../../protocol/mod.ts";
import type { MemberCalibration } from "./calibrate.ts";

/**
 * The panel's CPU on a shared host beyond the calibration's clients, per CPU second of those
 * clients: the actors' plane work, the coordinator and the nats-server. 3 members, k = 4, 200
 * prompts, tiny `pop serve` servers on this 2-core machine: the actors, coordinator and
 * nats-server used 1.7–1.9x the clients' CPU per prompt in three runs (`npm run bench:cost --
 * --parts plan` prints the ratio it measures).
 */
export const PANEL_CPU_PER_CLIENT_CPU = 0.8;

/** The shared-host term's readings and factor (absent when no server runs on this machine). */
export interface SharedHost {
  /** C: CPU seconds of the servers found here and of every member's client over the measured passes. */
  passCpuSeconds: number;
  /** W: the passes' wall seconds. */
  wallSeconds: number;
  /** I: cores the machine left idle over the passes. */
  idleCores: number;
  /** C / (C + others): this plan's share of the CPU the machine spent over the passes. */
  share: number;
  /** E: the panel's CPU the run adds (the clients' CPU × PANEL_CPU_PER_CLIENT_CPU). */
  panelCpuSeconds: number;
  /** f: what the model work's time is multiplied by. */
  factor: number;
}

/** The shared-host factor from the calibrations (undefined when no member's server runs on this machine). */
export function sharedHost(calibrations: MemberCalibration[]): SharedHost | undefined {
  const host = calibrations.find((c) => c.host)?.host;
  if (!host || host.localServers === 0 || !(host.wallSeconds > 0)) return undefined;
  const clients = calibrations.reduce((sum, c) => sum + c.clientCpuSeconds, 0);
  const passCpuSeconds = host.serverCpuSeconds + clients;
  if (!(passCpuSeconds > 0)) return undefined;
  // Off Linux the machine's total is unknown: then as if it ran nothing else, with no core idle.
  const busy = Number.isFinite(host.machineBusySeconds) ? Math.max(host.machineBusySeconds, passCpuSeconds) : passCpuSeconds;
  const idleCores = Math.max(0, host.cores - busy / host.wallSeconds);
  const share = passCpuSeconds / busy;
  const panelCpuSeconds = PANEL_CPU_PER_CLIENT_CPU * clients;
  const factor = 1 + (Math.max(0, panelCpuSeconds - idleCores * host.wallSeconds) / passCpuSeconds) * share;
  return { passCpuSeconds, wallSeconds: host.wallSeconds, idleCores, share, panelCpuSeconds, factor };
}

/** The run's shape the projection is for. */
export interface PlanParams {
  experiment: string;
  iterations: number;
  promptsPerIteration: number;
  k: number;
  mode: JudgingMode;
  judgesPerAuthor: number | "all";
  selfJudging: boolean;
  /** Training minutes per iteration (absent: training left out). */
  trainMinutes?: number;
}

/** Requests and seconds of a phase. */
export interface PhaseFigures {
  requests: number;
  seconds: number;
}

/** Judging's figures: `requests` is the formula's bound, `expectedRequests` after repeated answers are judged once. */
export interface JudgeFigures extends PhaseFigures {
  expectedRequests: number;
}

export interface MemberProjection {
  name: string;
  baseUrl: string;
  model: string;
  /** What the calibration measured. */
  measured: {
    /** Wall seconds per prompt answered, at `answerInFlight` requests at once. */
    secondsPerPrompt: number;
    /** Wall seconds per candidate judged, at `judgeInFlight` requests at once. */
    secondsPerCandidate: number;
    answerInFlight: number;
    judgeInFlight: number;
    /** Requests per prompt answered (1 when the server honours n; k when it does not). */
    requestsPerPrompt: number;
    /** Requests per candidate judged (1 or 5, more with re-asks). */
    requestsPerCandidate: number;
    /** Mean seconds of one request under that load. */
    answerLatency: number;
    judgeLatency: number;
    /** The pass's fill and drain, F: one answer's and one judgement's latency (these and the per-unit seconds include the shared-host factor). */
    pipelineSeconds: number;
  };
  /** Per prompt: the formula's requests, and the candidates this member judges. */
  perPrompt: { answerRequests: number; judgedCandidates: number; judgeRequests: number; expectedJudgeRequests: number };
  /** `seconds`: answering and judging side by side, plus the pipeline's fill and drain (`overheadSeconds`). */
  perIteration: { answer: PhaseFigures; judge: JudgeFigures; overheadSeconds: number; seconds: number };
  run: { answer: PhaseFigures; judge: JudgeFigures; overheadSeconds: number; seconds: number };
}

export interface Projection {
  params: PlanParams;
  /** Members on the panel (N). */
  panel: number;
  /** Judges per author as applied: m, at most N − 1. */
  judgesPerAuthor: number;
  members: MemberProjection[];
  /** The member whose iteration takes longest (it bounds the iteration). */
  slowest: string;
  /** The shared-host term (see the module's comment); absent when no server runs on this machine. */
  sharedHost?: SharedHost;
  perIteration: Totals;
  run: Totals;
}

export interface Totals {
  answerRequests: number;
  judgeRequests: number;
  expectedJudgeRequests: number;
  /** The slowest member's answering and judging (model time that bounds the iteration). */
  modelSeconds: number;
  /** Its pipeline's fill and drain (modelled from its measured latencies). */
  overheadSeconds: number;
  trainSeconds: number;
  seconds: number;
}

/** The projection of a run of shape `params` on the calibrated members. */
export function project(calibrations: MemberCalibration[], params: PlanParams): Projection {
  const names = calibrations.map((c) => c.member.name);
  const assignment = new JudgeAssignment(params.experiment, 1, names, params.judgesPerAuthor);
  const perCandidate = params.mode === "single" ? 1 : CRITERIA.length;
  const byName = new Map(calibrations.map((c) => [c.member.name, c]));
  const P = params.promptsPerIteration;
  const shared = sharedHost(calibrations);
  const hostFactor = shared?.factor ?? 1;
  const members = calibrations.map((c): MemberProjection => {
    const name = c.member.name;
    const judgedCandidates = (assignment.perAuthor + (params.selfJudging ? 1 : 0)) * params.k;
    const sampleIds = Object.keys(c.answers);
    // Distinct (prompt, answer) among the candidates this member would judge, over the sample prompts.
    const distinct = sampleIds.length
      ? sampleIds.reduce((sum, id) => {
          const authors = assignment.authorsOf(id, name);
          if (params.selfJudging) authors.push(name);
          return sum + new Set(authors.flatMap((a) => byName.get(a)?.answers[id]?.slice(0, params.k) ?? [])).size;
        }, 0) / sampleIds.length
      : judgedCandidates;
    const answerLatency = c.answer.requestSeconds / Math.max(1, c.answer.requests);
    const judgeLatency = c.judge.requestSeconds / Math.max(1, c.judge.requests);
    const fill = answerLatency + judgeLatency;
    // The pass's steady part: W − F, but never under half of W (a pass too short to have one).
    const pass = c.answer.wallSeconds + c.judge.wallSeconds;
    const steady = pass > 0 ? Math.max(pass - fill, pass / 2) / pass : 1;
    const pipelineSeconds = fill * hostFactor;
    const measured = {
      secondsPerPrompt: (hostFactor * steady * c.answer.wallSeconds) / Math.max(1, c.answer.units),
      secondsPerCandidate: (hostFactor * steady * c.judge.wallSeconds) / Math.max(1, c.judge.units),
      answerInFlight: c.answer.inFlight,
      judgeInFlight: c.judge.inFlight,
      requestsPerPrompt: c.answer.requests / Math.max(1, c.answer.units),
      requestsPerCandidate: c.judge.requests / Math.max(1, c.judge.units),
      answerLatency,
      judgeLatency,
      pipelineSeconds,
    };
    const perPrompt = {
      answerRequests: 1,
      judgedCandidates,
      judgeRequests: judgedCandidates * perCandidate,
      expectedJudgeRequests: distinct * perCandidate,
    };
    const answer = { requests: P * perPrompt.answerRequests, seconds: P * measured.secondsPerPrompt };
    const judge = {
      requests: P * perPrompt.judgeRequests,
      expectedRequests: P * perPrompt.expectedJudgeRequests,
      seconds: P * distinct * measured.secondsPerCandidate,
    };
    const times = (f: number) => ({
      answer: { requests: answer.requests * f, seconds: answer.seconds * f },
      judge: { requests: judge.requests * f, expectedRequests: judge.expectedRequests * f, seconds: judge.seconds * f },
      overheadSeconds: pipelineSeconds * f,
      seconds: (answer.seconds + judge.seconds + pipelineSeconds) * f,
    });
    return { name, baseUrl: c.member.baseUrl, model: c.member.model, measured, perPrompt, perIteration: times(1), run: times(params.iterations) };
  });

  const slowest = members.reduce((a, b) => (b.perIteration.seconds > a.perIteration.seconds ? b : a), members[0]!);
  const modelSeconds = slowest ? slowest.perIteration.answer.seconds + slowest.perIteration.judge.seconds : 0;
  const overheadSeconds = slowest?.perIteration.overheadSeconds ?? 0;
  const trainSeconds = (params.trainMinutes ?? 0) * 60;
  const sum = (f: (m: MemberProjection) => number) => members.reduce((s, m) => s + f(m), 0);
  const perIteration: Totals = {
    answerRequests: sum((m) => m.perIteration.answer.requests),
    judgeRequests: sum((m) => m.perIteration.judge.requests),
    expectedJudgeRequests: sum((m) => m.perIteration.judge.expectedRequests),
    modelSeconds,
    overheadSeconds,
    trainSeconds,
    seconds: modelSeconds + overheadSeconds + trainSeconds,
  };
  const n = params.iterations;
  const run: Totals = {
    answerRequests: perIteration.answerRequests * n,
    judgeRequests: perIteration.judgeRequests * n,
    expectedJudgeRequests: perIteration.expectedJudgeRequests * n,
    modelSeconds: modelSeconds * n,
    overheadSeconds: overheadSeconds * n,
    trainSeconds: trainSeconds * n,
    seconds: perIteration.seconds * n,
  };
  return { params, panel: members.length, judgesPerAuthor: assignment.perAuthor, members, slowest: slowest?.name ?? "", sharedHost: shared, perIteration, run };
}
