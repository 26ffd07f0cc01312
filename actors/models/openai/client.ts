/**
 * A small client for OpenAI-compatible servers: a concurrency limit that keeps the server busy
 * without flooding it, a timeout per request, and retries with exponential backoff (or the
 * server's Retry-After) on connection errors, timeouts, 408, 429 and 5xx. Errors name the
 * server, the request and what to do.
 */
import { z } from "zod";
import { reportUsage } from "../usage.ts";
import { ServerRequestError, ServerResponseError, ServerUnavailableError } from "./errors.ts";
import { ChatCompletion, ModelList, errorMessageOf, type ChatRequest } from "./wire.ts";

/** Options of {@link OpenAiClient}; the defaults suit a single vLLM server on a GPU host. */
export interface ClientOptions {
  /** Base URL including the API prefix, e.g. `http://gpu1:8000/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey?: string;
  /** Requests in flight at once (default 16). */
  concurrency?: number;
  /** Time limit of one request (default 300 s: a long answer from a busy server). */
  timeoutMs?: number;
  /** Retries after the first attempt on retryable failures (default 6, about a minute of backoff). */
  retries?: number;
  /** First backoff delay (default 500 ms), doubled each retry up to 30 s. */
  backoffMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Counting semaphore: at most `limit` holders at once, first come first served. */
class Limit {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class OpenAiClient {
  readonly baseUrl: string;
  private readonly limit: Limit;
  private readonly stopping = new AbortController();
  /** Requests sent (attempts included), for logs and tests. */
  readonly stats = { requests: 0, retries: 0 };

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.limit = new Limit(options.concurrency ?? 16);
  }

  /** A chat completion; `what` says what it is for ("answering prompt X"), for error messages. */
  chat(body: ChatRequest, what: string): Promise<ChatCompletion> {
    return this.request("POST", "/chat/completions", body, what, ChatCompletion);
  }

  /** The models the server serves. */
  models(): Promise<ModelList> {
    return this.request("GET", "/models", undefined, "listing models", ModelList);
  }

  /**
   * A POST whose answer is plain text, like vLLM's runtime LoRA endpoints
   * (`/load_lora_adapter`, `/unload_lora_adapter`); resolves with the text.
   */
  postForText(path: string, body: unknown, what: string): Promise<string> {
    return this.request("POST", path, body, what, "text");
  }

  /** Aborts every request in flight or waiting; they fail at once. */
  close(): void {
    this.stopping.abort();
  }

  private async request<T>(method: string, path: string, body: unknown, what: string, schema: z.ZodType<T> | "text"): Promise<T> {
    const url = `${this.baseUrl}${path}`;
    const retries = this.options.retries ?? 6;
    const started = Date.now();
    let lastError: unknown;
    let lastStatus: number | undefined;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (this.stopping.signal.aborted) throw new ServerUnavailableError(`${what}: the client was closed`, { cause: lastError });
      let waitMs = Math.min(30_000, (this.options.backoffMs ?? 500) * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      const outcome = await this.limit.run(() => this.once(method, url, body, schema === "text"));
      if (outcome.kind === "ok") {
        if (schema === "text") return outcome.json as T;
        const parsed = schema.safeParse(outcome.json);
        if (parsed.success) return parsed.data;
        throw new ServerResponseError(
          `${method} ${url} (${what}) answered ${outcome.status} with a body that is not what an OpenAI-compatible server sends: ${parsed.error.issues
            .slice(0, 3)
            .map((i) => `${i.path.join(".")}: ${i.message}`)
            .join("; ")}`,
        );
      }
      if (outcome.kind === "refused") {
        throw new ServerRequestError(
          `${method} ${url} refused ${what}: HTTP ${outcome.status}: ${outcome.message}${hint(outcome.status, path)}`,
          outcome.status,
        );
      }
      if (outcome.kind === "closed") throw new ServerUnavailableError(`${what}: the client was closed`, { cause: outcome.error });
      lastError = outcome.kind === "unreachable" ? outcome.error : new Error(`HTTP ${outcome.status}: ${outcome.message}`);
      lastStatus = outcome.kind === "busy" ? outcome.status : undefined;
      if (outcome.kind === "busy" && outcome.retryAfterMs !== undefined) waitMs = Math.min(120_000, outcome.retryAfterMs);
      if (attempt === retries) break;
      this.stats.retries++;
      this.options.log?.warn(
        { server: this.baseUrl, what, attempt: attempt + 1, of: retries + 1, waitMs: Math.round(waitMs), error: (lastError as Error).message },
        "request failed; retrying",
      );
      await sleep(waitMs, this.stopping.signal);
    }
    throw new ServerUnavailableError(
      `${method} ${url} (${what}) failed ${retries + 1} times over ${Math.round((Date.now() - started) / 1000)} s; last error: ${describe(lastError)}. ` +
        `Is the server running and serving this model (try: curl ${this.baseUrl}/models)? The work goes back to the stream and is tried again later.`,
      { cause: lastError, status: lastStatus },
    );
  }

  /**
   * One HTTP request, reported as the model's usage whatever its outcome (a retry is another
   * request): its send-to-reply time and the token counts of the reply's `usage` where the
   * server sent them.
   */
  private async once(method: string, url: string, body: unknown, text = false): Promise<Outcome> {
    const t0 = performance.now();
    const outcome = await this.send(method, url, body, text);
    const tokens = outcome.kind === "ok" ? ReplyUsage.safeParse(outcome.json) : undefined;
    reportUsage({
      requests: 1,
      seconds: (performance.now() - t0) / 1000,
      promptTokens: tokens?.data?.usage?.prompt_tokens ?? 0,
      completionTokens: tokens?.data?.usage?.completion_tokens ?? 0,
    });
    return outcome;
  }

  private async send(method: string, url: string, body: unknown, text: boolean): Promise<Outcome> {
    this.stats.requests++;
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.options.timeoutMs ?? 300_000)]);
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let res: Response;
    let raw: string;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
      raw = await res.text();
    } catch (error) {
      if (this.stopping.signal.aborted) return { kind: "closed", error };
      return { kind: "unreachable", error };
    }
    let json: unknown;
    try {
      json = raw ? JSON.parse(raw) : undefined;
    } catch {
      json = undefined;
    }
    if (res.ok) {
      if (text) return { kind: "ok", status: res.status, json: raw };
      if (json === undefined) return { kind: "busy", status: res.status, message: `not JSON: ${raw.slice(0, 200)}` };
      return { kind: "ok", status: res.status, json };
    }
    const message = errorMessageOf(json ?? raw) ?? res.statusText;
    if (RETRY_STATUS.has(res.status)) return { kind: "busy", status: res.status, message, retryAfterMs: retryAfter(res.headers.get("retry-after")) };
    return { kind: "refused", status: res.status, message };
  }
}

/** The token counts of a reply (OpenAI's `usage`; servers that leave it out count nothing). */
const ReplyUsage = z.object({
  usage: z
    .object({ prompt_tokens: z.number().int().min(0).catch(0), completion_tokens: z.number().int().min(0).catch(0) })
    .partial()
    .nullish()
    .catch(undefined),
});

type Outcome =
  | { kind: "ok"; status: number; json: unknown }
  | { kind: "busy"; status: number; message: string; retryAfterMs?: number }
  | { kind: "refused"; status: number; message: string }
  | { kind: "unreachable"; error: unknown }
  | { kind: "closed"; error: unknown };

/** Retry-After in seconds or as an HTTP date. */
function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** Connection errors come from undici as `TypeError: fetch failed` with the system error as cause. */
function describe(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError") return "no answer within the request timeout";
  if (e?.cause?.code) return `${e.cause.code} (${e.cause.message ?? e.message})`;
  return e?.message ?? String(error);
}

function hint(status: number, path: string): string {
  if (status === 401 || status === 403) return ". Check the API key (--api-key-env names the variable that holds it).";
  if (status === 404 && path === "/models") return ". Is the base URL right? It usually ends in /v1.";
  if (status === 404) return ". Check --model against the server's models (GET /v1/models) and that the base URL ends in /v1.";
  return "";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
