/**
 * A model in a program of its own, in any language, spoken to over its stdin and stdout
 * (./wire.ts, docs/process-peer.md). The backend has the optional methods the program's hello
 * declares: train (under the trainer contract, in a work directory per iteration), weights (the
 * trained adapter directory, packed to travel to replicas and loaded into the program by path)
 * and evaluate. The program is supervised (./supervisor.ts): its failures are retryable, so the
 * work goes back to the stream while it restarts, and a restarted program is given the current
 * adapter before any request.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { adapterVersion, packDir, unpackTo } from "../../trainers/archive.ts";
import { WORK_FILES } from "../../trainers/contract.ts";
import { freshWorkDir, readMetrics, TrainerOutputError, writeTrainingInputs } from "../../trainers/workdir.ts";
import type {
  BackendInfo,
  EvalContext,
  EvalResult,
  ImageInput,
  Judgement,
  JudgeInput,
  ModelBackend,
  PreferenceInput,
  PromptInput,
  SamplingOptions,
  SimpoOptions,
  TrainContext,
  TrainResult,
} from "../contract.ts";
import { reportUsage } from "../usage.ts";
import { expectCount, judgementOf, wirePrompt } from "./convert.ts";
import { PeerSupervisor, type PeerRun, type SupervisorLog } from "./supervisor.ts";
import type { Hello, WireImage } from "./wire.ts";

/** Options of {@link ProcessBackend} (the plug's spec). */
export interface ProcessBackendOptions {
  /** The program, run with `sh -c`. */
  command: string;
  /** Deadline of an answer, judge, load or evaluate request (default 600 s). */
  timeoutMs?: number;
  /** Deadline of a train request (default 24 h). */
  trainTimeoutMs?: number;
  /** Time the program has to say hello (default 60 s). */
  startTimeoutMs?: number;
  /** First restart delay after a failure, doubling with each failure in a row (default 500 ms). */
  backoffMs?: number;
  /** Each step of a stop (stdin closed, SIGTERM, SIGKILL), this far apart (default 5 s). */
  stopGraceMs?: number;
  /** Training work directories and unpacked adapters (default ./pop-work). */
  workDir?: string;
}

/** The adapter the program answers with. */
interface Adapter {
  dir: string;
  bytes: Uint8Array;
  version: string;
}

export class ProcessBackend implements ModelBackend {
  readonly train?: (pairs: PreferenceInput[], options: SimpoOptions, context?: TrainContext) => Promise<TrainResult>;
  readonly exportWeights?: () => Promise<Uint8Array>;
  readonly importWeights?: (bytes: Uint8Array) => Promise<void>;
  readonly evaluate?: (context?: EvalContext) => Promise<EvalResult>;
  private adapter?: Adapter;
  private readonly workDir: string;
  private readonly timeoutMs: number;

  private constructor(
    private readonly supervisor: PeerSupervisor,
    private readonly hello: Hello,
    private readonly options: ProcessBackendOptions,
    private readonly log?: SupervisorLog,
  ) {
    this.workDir = resolve(options.workDir ?? "pop-work");
    this.timeoutMs = options.timeoutMs ?? 600_000;
    const can = new Set(hello.capabilities);
    if (can.has("weights")) {
      this.exportWeights = async () => this.adapter?.bytes ?? new Uint8Array(0);
      this.importWeights = (bytes) => this.load(bytes);
    }
    if (can.has("train") && can.has("weights")) this.train = (pairs, simpo, context) => this.trainRun(pairs, simpo, context);
    if (can.has("evaluate")) this.evaluate = (context) => this.evaluateNow(context);
  }

  /** Starts the program and waits for its hello; the backend has the methods the hello declares. */
  static async open(options: ProcessBackendOptions, log?: SupervisorLog): Promise<ProcessBackend> {
    let backend: ProcessBackend | undefined;
    const supervisor = new PeerSupervisor({
      command: options.command,
      log,
      startTimeoutMs: options.startTimeoutMs,
      backoffMs: options.backoffMs,
      stopGraceMs: options.stopGraceMs,
      // A restarted program starts from its base weights: give it the adapter it had.
      afterStart: (run) => backend?.reload(run) ?? Promise.resolve(),
    });
    try {
      const hello = await supervisor.hello();
      backend = new ProcessBackend(supervisor, hello, options, log);
      return backend;
    } catch (error) {
      await supervisor.dispose();
      throw error;
    }
  }

  async info(): Promise<BackendInfo> {
    const base = this.hello.version ?? `process-${createHash("sha256").update(this.hello.name).digest("hex").slice(0, 16)}`;
    return { kind: "process", version: this.adapter?.version ?? base, parameters: this.hello.parameters };
  }

  async generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]> {
    if (prompts.length === 0) return [];
    const cache = new Map<ImageInput, WireImage>();
    const t0 = performance.now();
    const { answers } = await this.supervisor.request(
      "answer",
      {
        prompts: prompts.map((p) => wirePrompt(p, cache)),
        k: options.k,
        temperature: options.temperature,
        seed: options.seed,
        max_tokens: options.maxTokens,
        top_p: options.topP,
      },
      { timeoutMs: this.timeoutMs },
    );
    reportUsage({ requests: 1, seconds: (performance.now() - t0) / 1000 });
    expectCount("answer lists", answers.length, prompts.length);
    for (const a of answers) expectCount("answers to a prompt", a.length, options.k);
    return answers;
  }

  async judge(items: JudgeInput[]): Promise<Judgement[]> {
    if (items.length === 0) return [];
    const cache = new Map<ImageInput, WireImage>();
    const t0 = performance.now();
    const { judgements } = await this.supervisor.request(
      "judge",
      { items: items.map((i) => ({ prompt: wirePrompt(i.prompt, cache), answer: i.answer })) },
      { timeoutMs: this.timeoutMs },
    );
    reportUsage({ requests: 1, seconds: (performance.now() - t0) / 1000 });
    expectCount("judgements", judgements.length, items.length);
    return judgements.map(judgementOf);
  }

  /** One iteration's training: the trainer contract's work directory, trained in by the program, which then answers with the adapter. */
  private async trainRun(pairs: PreferenceInput[], simpo: SimpoOptions, context?: TrainContext): Promise<TrainResult> {
    const run = context ?? { experiment: "default", peer: "default", iteration: 0 };
    const dir = await freshWorkDir(this.workDir, run);
    const settings = await writeTrainingInputs(dir, { ...run, baseModel: this.hello.name, initAdapter: this.adapter?.dir ?? null }, pairs, simpo);
    this.log?.info({ dir, pairs: pairs.length }, "the peer program trains");
    const t0 = performance.now();
    await this.supervisor
      .request(
        "train",
        { work_dir: dir },
        {
          timeoutMs: this.options.trainTimeoutMs ?? 86_400_000,
          onProgress: (p) => {
            if (p.message) this.log?.info({ command: "peer", done: p.done, total: p.total }, p.message);
            if (p.done !== undefined && p.total !== undefined) {
              context?.onProgress?.(p.done, p.total, p.loss !== undefined ? { loss: p.loss, margin: p.margin ?? 0 } : undefined);
            }
          },
        },
      )
      .finally(() => reportUsage({ requests: 1, seconds: (performance.now() - t0) / 1000 }));
    const result = await readMetrics(settings.metrics);
    const adapterDir = join(dir, WORK_FILES.adapter);
    if (!existsSync(adapterDir) || readdirSync(adapterDir).length === 0) {
      throw new TrainerOutputError(`the peer program wrote metrics but no adapter into ${adapterDir}`);
    }
    const bytes = await packDir(adapterDir);
    // The program already answers with it: no load request.
    this.adapter = { dir: adapterDir, bytes, version: adapterVersion(bytes) };
    return result;
  }

  /** Loads weights trained elsewhere (a replica's, or this peer's before a restart). */
  private async load(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    const version = adapterVersion(bytes);
    if (this.adapter?.version === version) return;
    const dir = join(this.workDir, "adapters", version);
    await unpackTo(bytes, dir);
    await this.supervisor.request("load", { adapter_dir: dir }, { timeoutMs: this.timeoutMs });
    this.adapter = { dir, bytes, version };
  }

  /** Gives a fresh run of the program the adapter the previous run answered with. */
  private async reload(run: PeerRun): Promise<void> {
    if (!this.adapter) return;
    this.log?.info({ adapter: this.adapter.version }, "loading the current adapter into the restarted peer program");
    await this.supervisor.requestOn(run, "load", { adapter_dir: this.adapter.dir }, { timeoutMs: this.timeoutMs });
  }

  private async evaluateNow(context?: EvalContext): Promise<EvalResult> {
    const t0 = performance.now();
    const version = context?.modelVersion ?? (await this.info()).version;
    const r = await this.supervisor.request("evaluate", { iteration: context?.iteration ?? 0, model_version: version }, { timeoutMs: this.timeoutMs });
    return { suites: r.suites, average: r.average, items: r.items, chance: r.chance, ms: performance.now() - t0 };
  }

  /** Ends the program: stdin closed, then SIGTERM, then SIGKILL, each after the stop grace. */
  dispose(): Promise<void> {
    return this.supervisor.dispose();
  }
}
