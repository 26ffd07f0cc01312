/**
 * OpenAiBackend: any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp's server, Ollama,
 * `pop serve`) as a peer that answers and judges. The model lives in the server; with a trainer
 * command (./../trainer/contract.ts) the peer also learns: each iteration's LoRA adapter is
 * trained by that program, hot-loaded into the server through vLLM's runtime LoRA endpoints and
 * named as the model in every later request. Without one it keeps its weights.
 *
 * - Answering: one chat completion per prompt with the prompt's images as data URLs and `n` = k;
 *   a server that returns fewer choices (it ignores `n`) or refuses `n` is asked once per missing
 *   candidate from then on.
 * - Judging, greedy with `top_logprobs`, with the rubric of ./rubric.ts, as the experiment's
 *   `judging.mode` says. "single": one request per candidate whose reply gives every criterion
 *   on a line of its own (./score-lines.ts); a criterion it misses is asked for alone, as below.
 *   "per-criterion": one request per candidate and criterion (./score.ts). A score is the
 *   expected value over the digits 1–5. A criterion's unreadable reply is asked again once with
 *   a reminder; a candidate with a criterion still unread is recorded as an abstention (a
 *   verdict holds all five scores of a candidate or none).
 */
import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { CRITERIA, type Criterion, type LikertScores } from "../../../protocol/mod.ts";
import type {
  BackendInfo,
  Judgement,
  JudgeInput,
  JudgeOptions,
  ModelBackend,
  PreferenceInput,
  PromptInput,
  SamplingOptions,
  SimpoOptions,
  TrainContext,
  TrainResult,
} from "../contract.ts";
import { BackendConfigError, BackendError } from "../registry.ts";
import { adapterVersion, packDir, unpackTo } from "../../trainers/archive.ts";
import { CommandTrainer } from "../../trainers/command-trainer.ts";
import { dataUrl } from "../../images/codec.ts";
import { OpenAiClient, type ClientOptions } from "./client.ts";
import { ServerRequestError, ServerUnavailableError } from "./errors.ts";
import { JUDGE_REMINDER, judgeAllPrompt, judgePrompt } from "./rubric.ts";
import { readScore, type ScoreReading } from "./score.ts";
import { readScoreLines, type LineReading } from "./score-lines.ts";
import type { ChatMessage, ChatRequest, Choice, ContentPart } from "./wire.ts";

/** Options of {@link OpenAiBackend}. */
export interface OpenAiBackendOptions extends ClientOptions {
  /** The served model's name, as the server lists it in /v1/models. */
  model: string;
  /** Upper bound on an answer's tokens when the experiment sets none (default 512). */
  maxTokens?: number;
  /**
   * Temperature applied to the judge's digit distribution before taking the expected score
   * (default 1: the distribution as the model gives it; 0: the most likely digit).
   */
  judgeTemperature?: number;
  /** `top_logprobs` asked for when judging (default 10; vLLM and OpenAI allow up to 20; 0: read the text only). */
  topLogprobs?: number;
  /** Times an unreadable judgement is asked again before abstaining (default 1). */
  judgeRetries?: number;
  /** How long to wait at start for the server to come up (default 10 min: a 7B model takes minutes to load). */
  startupWaitMs?: number;
  /** The trainer command (trainer contract); absent: this peer does not train. */
  trainerCmd?: string;
  /** Kill a trainer that runs longer (default 24 h). */
  trainerTimeoutMs?: number;
  /**
   * Where training work directories and unpacked adapters go (default ./pop-work). The serving
   * engine loads adapters from here by path, so it must see this directory (same host, or the
   * same mount inside its container).
   */
  workDir?: string;
}

/** The adapter the server currently answers with. */
interface LoadedAdapter {
  /** The name requests use as `model` (the base name and the adapter's content hash). */
  name: string;
  /** Where it is unpacked (the path the server loaded it from). */
  dir: string;
  bytes: Uint8Array;
  version: string;
}

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export class OpenAiBackend implements ModelBackend {
  private nSupported: boolean | undefined;
  private logprobsSupported = true;
  private toldMissing = false;
  /**
   * How judgements were read, for logs and tests: criteria read from log-probs or from text,
   * single-mode criteria asked for again alone (`reasked`), replies asked again with a reminder
   * (`retried`), and candidates abstained on.
   */
  readonly judgeStats = { logprobs: 0, text: 0, reasked: 0, retried: 0, abstained: 0 };

  private adapter: LoadedAdapter | undefined;
  private readonly workDir: string;
  /** Present only with a trainer command: a backend without it does not train. */
  readonly train?: (pairs: PreferenceInput[], options: SimpoOptions, context?: TrainContext) => Promise<TrainResult>;

  private constructor(
    readonly client: OpenAiClient,
    private readonly options: OpenAiBackendOptions,
    private readonly version: string,
    private readonly log?: Log,
  ) {
    this.workDir = resolve(options.workDir ?? "pop-work");
    if (options.trainerCmd) {
      const trainer = new CommandTrainer({
        command: options.trainerCmd,
        workRoot: this.workDir,
        baseModel: options.model,
        timeoutMs: options.trainerTimeoutMs,
        log,
      });
      this.train = async (pairs, simpo, context) => {
        const run = context ?? { experiment: "default", peer: "default", iteration: 0 };
        const { result, adapterDir } = await trainer.train(pairs, simpo, run, this.adapter?.dir ?? null, context?.onProgress);
        await this.importWeights(await packDir(adapterDir));
        return result;
      };
    }
  }

  /** Connects (waiting for the server to come up), checks that it serves the model, and returns the backend. */
  static async open(options: OpenAiBackendOptions, log?: Log): Promise<OpenAiBackend> {
    const client = new OpenAiClient({ ...options, log });
    const deadline = Date.now() + (options.startupWaitMs ?? 600_000);
    const probe = new OpenAiClient({ ...options, retries: 0, timeoutMs: 10_000 });
    let told = false;
    for (;;) {
      try {
        const list = await probe.models();
        const entry = list.data.find((m) => m.id === options.model);
        if (!entry) {
          throw new BackendConfigError(
            `${client.baseUrl} does not serve a model named '${options.model}'; it serves: ${list.data.map((m) => m.id).join(", ") || "nothing"}. Pass one of those as --model.`,
          );
        }
        // The model's name and its weights' path (vLLM's `root`) identify what answers.
        const version = `openai-${createHash("sha256")
          .update(`${entry.id}\u0000${entry.root ?? ""}`)
          .digest("hex")
          .slice(0, 16)}`;
        return new OpenAiBackend(client, options, version, log);
      } catch (error) {
        if (!(error instanceof ServerUnavailableError) || Date.now() > deadline) {
          if (error instanceof ServerUnavailableError) {
            throw new ServerUnavailableError(
              `${client.baseUrl} did not come up within ${Math.round((options.startupWaitMs ?? 600_000) / 1000)} s: ${error.message}`,
              { cause: error },
            );
          }
          throw error;
        }
        if (!told) log?.warn({ server: client.baseUrl, error: error.message }, "waiting for the model server to come up");
        told = true;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  async info(): Promise<BackendInfo> {
    return { kind: "openai", version: this.adapter?.version ?? this.version };
  }

  /** The name requests use: the loaded adapter's, else the base model's. */
  get servedModel(): string {
    return this.adapter?.name ?? this.options.model;
  }

  /**
   * The current adapter as an archive (what the actor stores for replicas and restarts); no
   * bytes at all while the server answers with its base weights.
   */
  async exportWeights(): Promise<Uint8Array> {
    return this.adapter?.bytes ?? new Uint8Array(0);
  }

  /**
   * Unpacks an adapter archive under the work directory and hot-loads it into the server
   * (vLLM's POST /v1/load_lora_adapter); later requests name it as the model, and the adapter it
   * replaces is unloaded.
   */
  async importWeights(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return this.useBase();
    const version = adapterVersion(bytes);
    if (this.adapter?.version === version) return;
    const dir = join(this.workDir, "adapters", version);
    await unpackTo(bytes, dir);
    const name = `${this.options.model}-${version}`;
    try {
      await this.client.postForText("/load_lora_adapter", { lora_name: name, lora_path: dir }, `loading adapter ${name} from ${dir}`);
    } catch (error) {
      // Already loaded under this name (the name holds the content hash) is what we want.
      const listed = await this.client.models().then(
        (m) => m.data.some((e) => e.id === name),
        () => false,
      );
      if (!listed) {
        throw new BackendError(
          `${this.client.baseUrl} did not load adapter ${name}: ${(error as Error).message}. A vLLM server needs --enable-lora (and --max-lora-rank at least the adapter's rank) and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, and must see ${dir}.`,
          { cause: error, retryable: (error as { retryable?: boolean }).retryable },
        );
      }
    }
    const previous = this.adapter;
    this.adapter = { name, dir, bytes, version };
    this.log?.info({ server: this.client.baseUrl, adapter: name }, "the server answers with the new adapter");
    if (previous && previous.name !== name) {
      await this.client
        .postForText("/unload_lora_adapter", { lora_name: previous.name }, `unloading adapter ${previous.name}`)
        .catch((error) =>
          this.log?.warn({ adapter: previous.name, error: (error as Error).message }, "could not unload the previous adapter; it stays loaded on the server"),
        );
    }
  }

  async generate(prompts: PromptInput[], options: SamplingOptions): Promise<string[][]> {
    return Promise.all(prompts.map((p) => this.answer(p, options)));
  }

  /**
   * k answers to one prompt. A prompt the server refuses (over its context length, say) gets no
   * answers, so the actor can set that one prompt aside without failing the others.
   */
  private async answer(prompt: PromptInput, options: SamplingOptions): Promise<string[]> {
    const seed = promptSeed(options.seed, prompt.id);
    const base: ChatRequest = {
      model: this.servedModel,
      messages: [{ role: "user", content: [...imageParts(prompt), { type: "text", text: prompt.question }] }],
      temperature: options.temperature,
      max_tokens: options.maxTokens ?? this.options.maxTokens ?? 512,
    };
    const what = `answering prompt ${prompt.id}`;
    const out: string[] = [];
    try {
      if (options.k > 1 && this.nSupported !== false) {
        try {
          const res = await this.client.chat({ ...base, n: options.k, seed }, what);
          out.push(...res.choices.slice(0, options.k).map((c) => c.message.content ?? ""));
          if (out.length < options.k && this.nSupported === undefined) {
            this.log?.info({ server: this.client.baseUrl, asked: options.k, got: out.length }, "the server ignores n; asking once per candidate");
          }
          this.nSupported = out.length >= options.k;
        } catch (error) {
          // A server refuses n > 1 with a 4xx (llama.cpp: more than its slots) or, in older
          // builds, a 500. Before n is known to work, one plain request tells which it is.
          const answered = error instanceof ServerRequestError || (error instanceof ServerUnavailableError && error.status !== undefined);
          if (!answered || this.nSupported === true) throw error;
          const res = await this.client.chat({ ...base, seed }, what);
          out.push(res.choices[0]?.message.content ?? "");
          this.nSupported = false;
          this.log?.info({ server: this.client.baseUrl, error: (error as Error).message }, "the server refused n > 1; asking once per candidate");
        }
      }
      while (out.length < options.k) {
        const res = await this.client.chat({ ...base, seed: seed + out.length }, what);
        const text = res.choices[0]?.message.content;
        out.push(text ?? "");
      }
    } catch (error) {
      if (error instanceof ServerRequestError) {
        this.log?.warn({ promptId: prompt.id, error: error.message }, "the server refused a prompt; it gets no answers from this peer");
        return [];
      }
      throw error;
    }
    return out.map((t) => t.trim());
  }

  /** Back to the base weights (what an empty weights archive means). */
  private async useBase(): Promise<void> {
    const previous = this.adapter;
    if (!previous) return;
    this.adapter = undefined;
    await this.client
      .postForText("/unload_lora_adapter", { lora_name: previous.name }, `unloading adapter ${previous.name}`)
      .catch((error) =>
        this.log?.warn({ adapter: previous.name, error: (error as Error).message }, "could not unload the adapter; it stays loaded on the server"),
      );
  }

  async judge(items: JudgeInput[], options: JudgeOptions = {}): Promise<Judgement[]> {
    const single = (options.mode ?? "single") === "single";
    return Promise.all(items.map((item) => (single ? this.judgeAll(item) : this.judgeEach(item))));
  }

  /** "per-criterion": one request per criterion. */
  private async judgeEach(item: JudgeInput): Promise<Judgement> {
    const readings = await Promise.all(CRITERIA.map((c) => this.score(item, c)));
    return this.verdict(new Map(CRITERIA.map((c, i) => [c, readings[i]!])));
  }

  /**
   * "single": one request for every criterion; the criteria its reply misses are asked for
   * alone (each with its reminder), so a judge that cannot keep the format costs more requests
   * but abstains no more often than in "per-criterion" mode.
   */
  private async judgeAll(item: JudgeInput): Promise<Judgement> {
    const what = `judging an answer to prompt ${item.prompt.id}`;
    const messages: ChatMessage[] = [
      { role: "user", content: [...imageParts(item.prompt), { type: "text", text: judgeAllPrompt(item.prompt.question, item.answer) }] },
    ];
    const got = await this.askJudge(messages, what, SINGLE_MAX_TOKENS, true);
    // A refusal (a prompt over the server's context length, say) would only be refused again per criterion.
    if ("refused" in got) {
      this.judgeStats.abstained++;
      return { abstained: `all criteria: ${got.refused}` };
    }
    const readings = new Map<Criterion, ScoreReading>();
    if ("choice" in got) {
      const { scores, missing } = readScoreLines(got.choice, CRITERIA, this.options.judgeTemperature ?? 1);
      for (const [c, r] of Object.entries(scores) as [Criterion, LineReading][]) {
        this.judgeStats[r.from]++;
        readings.set(c, r);
      }
      const absent = Object.keys(missing);
      // Once: a model that cannot keep the format misses criteria on every candidate (judgeStats.reasked counts them).
      if (absent.length && !this.toldMissing) {
        this.toldMissing = true;
        this.log?.info(
          { promptId: item.prompt.id, missing: absent, reason: Object.values(missing)[0] },
          "the judge's reply missed criteria; asking for them alone (said once)",
        );
      }
    }
    const again = CRITERIA.filter((c) => !readings.has(c));
    this.judgeStats.reasked += again.length;
    const more = await Promise.all(again.map((c) => this.score(item, c)));
    for (const [i, c] of again.entries()) readings.set(c, more[i]!);
    return this.verdict(readings);
  }

  /** Five scores, or an abstention naming the first criterion that could not be read. */
  private verdict(readings: Map<Criterion, ScoreReading>): Judgement {
    const likert = {} as LikertScores;
    for (const c of CRITERIA) {
      const r = readings.get(c) ?? { unreadable: "not asked" };
      if ("unreadable" in r) {
        this.judgeStats.abstained++;
        return { abstained: `${c}: ${r.unreadable}` };
      }
      likert[c] = r.score;
    }
    return { likert };
  }

  /** One criterion's score, asked again with a reminder while unreadable. */
  private async score(item: JudgeInput, criterion: Criterion): Promise<ScoreReading> {
    const what = `judging an answer to prompt ${item.prompt.id} on ${criterion}`;
    const messages: ChatMessage[] = [
      { role: "user", content: [...imageParts(item.prompt), { type: "text", text: judgePrompt(item.prompt.question, item.answer, criterion) }] },
    ];
    const retries = this.options.judgeRetries ?? 1;
    let reading: ScoreReading = { unreadable: "no reply" };
    for (let attempt = 0; attempt <= retries; attempt++) {
      // A few tokens, not one: some models write "Score: 4"; the digit's position is found in the logprobs.
      const got = await this.askJudge(messages, what, 8, attempt === 0);
      if ("refused" in got) return { unreadable: got.refused };
      if ("none" in got) return { unreadable: got.none };
      reading = readScore(got.choice, this.options.judgeTemperature ?? 1);
      const reply = got.choice.message.content ?? "";
      if (!("unreadable" in reading)) {
        this.judgeStats[reading.from]++;
        return reading;
      }
      if (attempt < retries) {
        this.judgeStats.retried++;
        messages.push({ role: "assistant", content: reply }, { role: "user", content: JUDGE_REMINDER });
      }
    }
    return reading;
  }

  /**
   * One judge request: its first choice, `none` when the server returned no choice, or `refused`
   * when it refused the request. A server that refuses log-probs (or this many) is, when
   * `mayDropLogprobs`, asked again without them, and judged from the text from then on.
   */
  private async askJudge(
    messages: ChatMessage[],
    what: string,
    maxTokens: number,
    mayDropLogprobs: boolean,
  ): Promise<{ choice: Choice } | { none: string } | { refused: string }> {
    for (;;) {
      const body = this.judgeRequest(messages, maxTokens);
      try {
        const res = await this.client.chat(body, what);
        const choice = res.choices[0];
        return choice ? { choice } : { none: "the server returned no choice" };
      } catch (error) {
        if (!(error instanceof ServerRequestError)) throw error;
        if (mayDropLogprobs && body.logprobs) {
          mayDropLogprobs = false;
          if (this.logprobsSupported) {
            this.logprobsSupported = false;
            this.log?.info({ server: this.client.baseUrl, error: error.message }, "the server refused logprobs; reading scores from the reply text");
          }
          continue;
        }
        return { refused: `the server refused the judgement: ${error.message}` };
      }
    }
  }

  private judgeRequest(messages: ChatMessage[], maxTokens: number): ChatRequest {
    const top = this.options.topLogprobs ?? 10;
    const body: ChatRequest = { model: this.servedModel, messages, temperature: 0, max_tokens: maxTokens, seed: 0 };
    if (this.logprobsSupported && top > 0) Object.assign(body, { logprobs: true, top_logprobs: top });
    return body;
  }

  async dispose(): Promise<void> {
    this.client.close();
  }
}

/**
 * Room for a single-mode reply: five `criterion: digit` lines are about 25 tokens, more with the
 * Markdown some models add; a reply cut short loses only its last criteria, which are asked again.
 */
const SINGLE_MAX_TOKENS = 64;

/** Each image is sent with every request about it (each candidate, and each criterion in per-criterion mode), so its data URL is built once. */
const urls = new WeakMap<object, string>();
function imageParts(prompt: PromptInput): ContentPart[] {
  return prompt.images.map((img) => {
    let url = urls.get(img);
    if (!url) urls.set(img, (url = dataUrl(img)));
    return { type: "image_url", image_url: { url } };
  });
}

/** A per-prompt seed, so a prompt gets the same request whichever batch it came in. */
function promptSeed(seed: number, promptId: string): number {
  return createHash("sha256").update(`${seed}\u0000${promptId}`).digest().readUInt32BE(0) & 0x7fffffff;
}
