/**
 * One member's part of `pop plan`'s calibration: a few answer and judge requests of the experiment's shape sent to
 * each member's server by the openai backend itself (so they are exactly the requests a member
 * sends: n = k, the config's maxTokens, the judging mode's rubric), counted with the cost meter
 * (actors/models/usage.ts) and timed by the wall clock at the concurrency the actor runs at.
 */
import { OpenAiBackend } from "../../../actors/models/openai/backend.ts";
import { ServerRequestError, ServerResponseError, ServerUnavailableError } from "../../../actors/models/openai/errors.ts";
import { BackendConfigError } from "../../../actors/models/registry.ts";
import { meterUsage, NO_USAGE, type Usage } from "../../../actors/models/usage.ts";
import type { JudgeInput, PromptInput } from "../../../actors/models/contract.ts";
import type { JudgingMode } from "../../../protocol/mod.ts";
import { MemberRefusedError, MemberUnreachableError } from "./errors.ts";

/** One server of the plan, as `--member NAME=BASE_URL[,model=MODEL]` gives it. */
export interface PlanMember {
  name: string;
  /** API root, e.g. http://gpu1:8000/v1. */
  baseUrl: string;
  /** The served model's name. */
  model: string;
}

export interface CalibrationOptions {
  /** Candidates per prompt (the config's sampling.k): each answer request asks for n = k. */
  k: number;
  temperature: number;
  /** The config's sampling.maxTokens (absent: the backend's default, 512). */
  maxTokens?: number;
  mode: JudgingMode;
  /** The sample prompts: each is answered once (one request, n = k) and its distinct answers judged. */
  prompts: PromptInput[];
  /** Requests in flight at once: the openai backend's `--concurrency` (its default 16). */
  concurrency: number;
  apiKey?: string;
  /**
   * Prompts of an unmeasured pass before the measured one (none: no such pass): a server's first
   * requests pay for loading, compiling and its caches filling (`pop serve`'s JIT-compiled model
   * ran at half speed through its first pass). Other prompts than `prompts`, so that a server's
   * prefix cache does not serve the measured pass from what the warm one left.
   */
  warmPrompts?: PromptInput[];
  /** How long to wait for a server to come up (0: one try). */
  waitMs: number;
  /** Time limit of one request. */
  timeoutMs: number;
  /** Called as each prompt is answered or candidate judged. */
  onProgress?: (member: string, phase: "answer" | "judge", done: number, total: number) => void;
}

/** What one phase of a calibration took. */
export interface PhaseMeasure {
  /** Prompts answered, or candidates judged. */
  units: number;
  /** HTTP requests sent (retries and re-asks included). */
  requests: number;
  /**
   * This phase's share of the calibration pass's wall-clock seconds (answering and judging run
   * side by side in it, as in the run), apportioned by its requests' seconds.
   */
  wallSeconds: number;
  /** The requests' own send-to-reply seconds, summed (their mean is the latency under this load). */
  requestSeconds: number;
  promptTokens: number;
  completionTokens: number;
  /** Requests in flight at once during the phase: the concurrency, or fewer when there was less work. */
  inFlight: number;
}

/** A member's calibration. */
export interface MemberCalibration {
  member: PlanMember;
  answer: PhaseMeasure;
  judge: PhaseMeasure;
  /** The whole pass: every sample prompt answered and its distinct answers judged. */
  wallSeconds: number;
  /** Candidates the judge abstained on (unreadable replies). */
  abstained: number;
  /** The answers per sample prompt id (what the projection counts repeated answers from). */
  answers: Record<string, string[]>;
  /** CPU seconds this member's client (the calibration's process: encoding images, reading replies) used in the measured pass. */
  clientCpuSeconds: number;
  /** Set by ./calibrate.ts: what the measured passes cost this machine (see {@link HostReading}). */
  host?: HostReading;
}

/**
 * CPU this machine spent while every member's measured pass ran, when model servers run on it
 * (./host-cpu.ts finds them by port): the projection's shared-host term.
 */
export interface HostReading {
  /** Wall seconds from every member's go to the last member's result. */
  wallSeconds: number;
  /** CPU seconds of the model servers found on this machine (each server counted once). */
  serverCpuSeconds: number;
  /** Members whose server was found here. */
  localServers: number;
  /** Cores the machine has, and CPU seconds it spent in all (every process) over the window. */
  cores: number;
  machineBusySeconds: number;
}

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

/**
 * Calibrates one member: a warm-up round, then `warmed()` (the caller holds every member there
 * until all are warm), then the answer and judge phases, measured.
 */
export async function calibrateMember(member: PlanMember, o: CalibrationOptions, warmed: () => Promise<void>): Promise<MemberCalibration> {
  const where = `member '${member.name}' (${member.baseUrl}, model '${member.model}')`;
  // The backend swallows a refused answer (the prompt gets no answers) and logs why; keep the reason.
  const refusals: string[] = [];
  const log: Log = { info: () => {}, warn: (obj) => void ("error" in obj && refusals.push(String((obj as { error: unknown }).error))) };
  let backend: OpenAiBackend;
  try {
    backend = await OpenAiBackend.open(
      {
        baseUrl: member.baseUrl,
        model: member.model,
        apiKey: o.apiKey,
        concurrency: o.concurrency,
        maxTokens: o.maxTokens,
        startupWaitMs: o.waitMs,
        timeoutMs: o.timeoutMs,
        retries: 1,
      },
      log,
    );
  } catch (error) {
    throw explain(error, where);
  }
  try {
    const sampling = { k: o.k, temperature: o.temperature, maxTokens: o.maxTokens, seed: 0 };
    const [first] = o.prompts;
    if (!first) throw new Error("a calibration needs at least one sample prompt");
    // One request first: a server that refuses this experiment's requests says so at once.
    const warm = await backend.generate([first], sampling).catch((e) => Promise.reject(explain(e, where)));
    if (!warm[0]?.length) throw new MemberRefusedError(`${where} refused an answer request: ${refusals.at(-1) ?? "no answers"}`);
    await backend.judge([{ prompt: first, answer: warm[0][0]! }], { mode: o.mode }).catch((e) => Promise.reject(explain(e, where)));

    // One pass in the run's own shape: each prompt answered, then its distinct answers judged
    // (several candidates of one image, as a judge gets them). `concurrency` lanes take the
    // prompts in turn, so answer and judge requests share the server as they do in the run
    // (all prompts at once would queue every answer ahead of every judgement).
    const pass = async (prompts: PromptInput[], report: boolean) => {
      const answers: Record<string, string[]> = {};
      const answerUsage: Usage = { ...NO_USAGE };
      const judgeUsage: Usage = { ...NO_USAGE };
      let answered = 0;
      let judged = 0;
      let candidates = 0;
      let abstained = 0;
      const reasons: string[] = [];
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < prompts.length; i = next++) {
          const p = prompts[i]!;
          const [got] = (await meterUsage(() => backend.generate([p], sampling), answerUsage)).result;
          if (!got?.length) throw new MemberRefusedError(`${where} refused an answer request for prompt ${p.id}: ${refusals.at(-1) ?? "no answers"}`);
          answers[p.id] = got;
          if (report) o.onProgress?.(member.name, "answer", ++answered, prompts.length);
          const items: JudgeInput[] = [...new Set(got)].map((answer) => ({ prompt: p, answer }));
          candidates += items.length;
          const verdicts = (await meterUsage(() => backend.judge(items, { mode: o.mode }), judgeUsage)).result;
          for (const j of verdicts)
            if ("abstained" in j) {
              abstained++;
              reasons.push(j.abstained);
            }
          if (report) o.onProgress?.(member.name, "judge", ++judged, prompts.length);
        }
      };
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      await Promise.all(Array.from({ length: Math.min(o.concurrency, prompts.length) }, lane)).catch((e) => Promise.reject(explain(e, where)));
      const cpu = process.cpuUsage(cpu0);
      const clientCpuSeconds = (cpu.user + cpu.system) / 1e6;
      return { answers, answerUsage, judgeUsage, candidates, abstained, reasons, clientCpuSeconds, wallSeconds: (performance.now() - t0) / 1000 };
    };
    if (o.warmPrompts?.length) await pass(o.warmPrompts, false);
    await warmed();
    const { answers, answerUsage, judgeUsage, candidates, abstained, reasons, clientCpuSeconds, wallSeconds } = await pass(o.prompts, true);
    if (abstained === candidates) throw new MemberRefusedError(`${where} gave no readable judgement of any candidate: ${reasons.at(-1)}`);
    // Each phase's share of the pass: its requests' seconds over all requests' seconds.
    const share = answerUsage.seconds / Math.max(1e-9, answerUsage.seconds + judgeUsage.seconds);
    const phase = (usage: Usage, units: number, wall: number): PhaseMeasure => ({
      units,
      requests: usage.requests,
      wallSeconds: wall,
      requestSeconds: usage.seconds,
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      inFlight: Math.min(o.concurrency, usage.requests),
    });
    return {
      member,
      answer: phase(answerUsage, o.prompts.length, wallSeconds * share),
      judge: phase(judgeUsage, candidates, wallSeconds * (1 - share)),
      wallSeconds,
      abstained,
      answers,
      clientCpuSeconds,
    };
  } finally {
    await backend.dispose();
  }
}

/** The client's errors, as the member's: unreachable, or refused. */
function explain(error: unknown, where: string): Error {
  if (error instanceof MemberRefusedError || error instanceof MemberUnreachableError) return error;
  const message = (error as Error)?.message ?? String(error);
  if (error instanceof ServerUnavailableError && error.status === undefined)
    return new MemberUnreachableError(`${where} cannot be reached: ${message}`, { cause: error });
  if (error instanceof ServerUnavailableError) return new MemberUnreachableError(`${where} keeps failing: ${message}`, { cause: error });
  if (error instanceof ServerRequestError || error instanceof ServerResponseError || error instanceof BackendConfigError)
    return new MemberRefusedError(`${where} refused: ${message}`, { cause: error });
  return error as Error;
}
