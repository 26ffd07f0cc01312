/**
 * OpenAiBackend: any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp's server, Ollama,
 * `pop serve`) as a peer that answers and judges. It does not train: the model lives in the
 * server, and training it is a trainer's job, not this backend's.
 *
 * - Answering: one chat completion per prompt with the prompt's images as data URLs and `n` = k;
 *   a server that returns fewer choices (it ignores `n`) or refuses `n` is asked once per missing
 *   candidate from then on.
 * - Judging: one request per candidate and criterion with the rubric of ./rubric.ts, greedy,
 *   with `top_logprobs`; the score is the expected value over the digits 1–5 (./score.ts). An
 *   unreadable reply is asked again once with a reminder, then recorded as an abstention.
 */
import { createHash } from "node:crypto";
import { CRITERIA, type Criterion, type LikertScores } from "../../protocol/mod.ts";
import type { BackendInfo, Judgement, JudgeInput, ModelBackend, PromptInput, SamplingOptions } from "../backend/types.ts";
import { BackendConfigError } from "../backend/registry.ts";
import { dataUrl } from "../images/codec.ts";
import { OpenAiClient, type ClientOptions } from "./client.ts";
import { ServerRequestError, ServerUnavailableError } from "./errors.ts";
import { JUDGE_REMINDER, judgePrompt } from "./rubric.ts";
import { readScore, type ScoreReading } from "./score.ts";
import type { ChatMessage, ChatRequest, ContentPart } from "./wire.ts";

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
}

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export class OpenAiBackend implements ModelBackend {
  private nSupported: boolean | undefined;
  private logprobsSupported = true;
  /** How judgements were read, for logs and tests. */
  readonly judgeStats = { logprobs: 0, text: 0, retried: 0, abstained: 0 };

  private constructor(
    readonly client: OpenAiClient,
    private readonly options: OpenAiBackendOptions,
    private readonly version: string,
    private readonly log?: Log,
  ) {}

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
          throw new BackendConfigError(`${client.baseUrl} does not serve a model named '${options.model}'; it serves: ${list.data.map((m) => m.id).join(", ") || "nothing"}. Pass one of those as --model.`);
        }
        // The model's name and its weights' path (vLLM's `root`) identify what answers.
        const version = `openai-${createHash("sha256").update(`${entry.id}\u0000${entry.root ?? ""}`).digest("hex").slice(0, 16)}`;
        return new OpenAiBackend(client, options, version, log);
      } catch (error) {
        if (!(error instanceof ServerUnavailableError) || Date.now() > deadline) {
          if (error instanceof ServerUnavailableError) {
            throw new ServerUnavailableError(`${client.baseUrl} did not come up within ${Math.round((options.startupWaitMs ?? 600_000) / 1000)} s: ${error.message}`, { cause: error });
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
    return { kind: "openai", version: this.version };
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
      model: this.options.model,
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

  async judge(items: JudgeInput[]): Promise<Judgement[]> {
    return Promise.all(items.map((item) => this.judgeOne(item)));
  }

  private async judgeOne(item: JudgeInput): Promise<Judgement> {
    const readings = await Promise.all(CRITERIA.map((c) => this.score(item, c)));
    const likert = {} as LikertScores;
    for (const [i, c] of CRITERIA.entries()) {
      const r = readings[i]!;
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
    const messages: ChatMessage[] = [{ role: "user", content: [...imageParts(item.prompt), { type: "text", text: judgePrompt(item.prompt.question, item.answer, criterion) }] }];
    const retries = this.options.judgeRetries ?? 1;
    let reading: ScoreReading = { unreadable: "no reply" };
    for (let attempt = 0; attempt <= retries; attempt++) {
      let reply: string;
      try {
        const res = await this.client.chat(this.judgeRequest(messages), what);
        const choice = res.choices[0];
        if (!choice) return { unreadable: "the server returned no choice" };
        reading = readScore(choice, this.options.judgeTemperature ?? 1);
        reply = choice.message.content ?? "";
      } catch (error) {
        if (!(error instanceof ServerRequestError)) throw error;
        if (this.logprobsSupported && (this.options.topLogprobs ?? 10) > 0 && attempt === 0) {
          // Some servers refuse logprobs (or this many); judge from the text from now on.
          this.logprobsSupported = false;
          this.log?.info({ server: this.client.baseUrl, error: error.message }, "the server refused logprobs; reading scores from the reply text");
          attempt--;
          continue;
        }
        return { unreadable: `the server refused the judgement: ${error.message}` };
      }
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

  private judgeRequest(messages: ChatMessage[]): ChatRequest {
    const top = this.options.topLogprobs ?? 10;
    // A few tokens, not one: some models write "Score: 4"; the digit's position is found in the logprobs.
    const body: ChatRequest = { model: this.options.model, messages, temperature: 0, max_tokens: 8, seed: 0 };
    if (this.logprobsSupported && top > 0) Object.assign(body, { logprobs: true, top_logprobs: top });
    return body;
  }

  async dispose(): Promise<void> {
    this.client.close();
  }
}

/** Each image is sent with every request about it (k candidates x 5 criteria), so its data URL is built once. */
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
