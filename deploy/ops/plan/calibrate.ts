/**
 * `pop plan`'s calibration: a few answer and judge requests of the experiment's shape sent to
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
  /** The sample prompts: each is answered once (one request, n = k) and its first answer judged once. */
  prompts: PromptInput[];
  /** Requests in flight at once: the openai backend's `--concurrency` (its default 16). */
  concurrency: number;
  apiKey?: string;
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
  /** Wall-clock seconds for all units, with up to `inFlight` requests at once. */
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
  /** Candidates the judge abstained on (unreadable replies). */
  abstained: number;
  /** The answers per sample prompt id (what the projection counts repeated answers from). */
  answers: Record<string, string[]>;
}

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

/** Calibrates each member in turn (alone, so members sharing a server do not slow each other's figures). */
export async function calibrate(members: PlanMember[], options: CalibrationOptions): Promise<MemberCalibration[]> {
  const out: MemberCalibration[] = [];
  for (const m of members) out.push(await calibrateMember(m, options));
  return out;
}

async function calibrateMember(member: PlanMember, o: CalibrationOptions): Promise<MemberCalibration> {
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
    // One unmeasured round first: a server's first request can pay for loading or compiling.
    const warm = await backend.generate([first], sampling).catch((e) => Promise.reject(explain(e, where)));
    if (!warm[0]?.length) throw new MemberRefusedError(`${where} refused an answer request: ${refusals.at(-1) ?? "no answers"}`);
    await backend.judge([{ prompt: first, answer: warm[0][0]! }], { mode: o.mode }).catch((e) => Promise.reject(explain(e, where)));

    const answers: Record<string, string[]> = {};
    let answered = 0;
    const answer = await measure(o.prompts.length, o.concurrency, async () => {
      await Promise.all(
        o.prompts.map(async (p) => {
          const [got] = await backend.generate([p], sampling);
          if (!got?.length) throw new MemberRefusedError(`${where} refused an answer request for prompt ${p.id}: ${refusals.at(-1) ?? "no answers"}`);
          answers[p.id] = got;
          o.onProgress?.(member.name, "answer", ++answered, o.prompts.length);
        }),
      );
    }).catch((e) => Promise.reject(explain(e, where)));

    const items: JudgeInput[] = o.prompts.map((prompt) => ({ prompt, answer: answers[prompt.id]![0]! }));
    let judged = 0;
    let abstained = 0;
    const reasons: string[] = [];
    const perCandidate = o.mode === "single" ? 1 : 5;
    const judge = await measure(items.length * perCandidate, o.concurrency, async () => {
      await Promise.all(
        items.map(async (item) => {
          const [j] = await backend.judge([item], { mode: o.mode });
          if (j && "abstained" in j) {
            abstained++;
            reasons.push(j.abstained);
          }
          o.onProgress?.(member.name, "judge", ++judged, items.length);
        }),
      );
    }).catch((e) => Promise.reject(explain(e, where)));
    if (abstained === items.length) throw new MemberRefusedError(`${where} gave no readable judgement of any candidate: ${reasons.at(-1)}`);
    return { member, answer: { ...answer, units: o.prompts.length }, judge: { ...judge, units: items.length }, abstained, answers };
  } finally {
    await backend.dispose();
  }
}

/** Runs `work`, metering its requests and timing it; `nominal` requests at up to `concurrency` at once. */
async function measure(nominal: number, concurrency: number, work: () => Promise<void>): Promise<Omit<PhaseMeasure, "units">> {
  const usage: Usage = { ...NO_USAGE };
  const t0 = performance.now();
  await meterUsage(work, usage);
  const wallSeconds = (performance.now() - t0) / 1000;
  return {
    requests: usage.requests,
    wallSeconds,
    requestSeconds: usage.seconds,
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
    inFlight: Math.min(concurrency, nominal),
  };
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
