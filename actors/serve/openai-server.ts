/**
 * `pop serve`'s HTTP side: a model behind the OpenAI chat-completions API as the official clients
 * expect it (nested errors naming the field at fault, per-token log-probs, `finish_reason`,
 * `stop`/`top_p`, streaming as server-sent events, `GET /v1/models/{id}`), with vLLM's extras
 * (its model list's `root`/`parent`, runtime adapters) and Prometheus `/metrics`, on node:http
 * alone. Judge requests written with our rubric (actors/models/openai/rubric.ts), for one
 * criterion or for all in lines, are answered from the model's score distributions, any other
 * request is a question; concurrent requests are micro-batched (./batcher.ts).
 *
 * With `openAdapter` it also has vLLM's runtime LoRA endpoints (what vLLM exposes when started
 * with `--enable-lora` and `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`): `POST /v1/load_lora_adapter`
 * `{"lora_name", "lora_path"}` opens another model beside the base, which requests then name as
 * their `model` and `/v1/models` lists with the base as its `parent`; `POST
 * /v1/unload_lora_adapter` `{"lora_name"}` takes it away again; `"load_inplace": true` swaps a
 * loaded adapter's weights under the same name. Bodies, statuses and messages are vLLM's
 * (vllm/entrypoints/openai/serving_models.py, or models/serving.py in newer releases).
 *
 * ```ts
 * const server = await startOpenAiServer({ backend, model: "ocrdumb", port: 0 });
 * // POST `${server.url}/v1/chat/completions` ... then:
 * await server.close();
 * ```
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CRITERIA } from "../../protocol/mod.ts";
import type { ModelBackend, ScoreDistributions } from "../models/contract.ts";
import { AdapterRegistry, type Served } from "./adapters.ts";
import { CancelledError, MicroBatcher, type BatchStats } from "./batcher.ts";
import { answerReplies, choicesOf, completionBody, judgeLineReplies, judgeReplies, plainAnswerReplies, type Reply } from "./completion.ts";
import { Admission, type Ticket } from "./admission.ts";
import {
  AdapterBaseMismatchError,
  AdapterNotFoundError,
  ApiError,
  errorBody,
  ServerBusyError,
  ShuttingDownError,
  TypedApiError,
  invalidInput,
} from "./errors.ts";
import { ServeMetrics } from "./metrics.ts";
import { parseChatRequest, type ChatRequest } from "./request.ts";
import { CompletionStream } from "./streaming.ts";

/** Where the server writes its log lines (a pino logger fits). */
export interface ServeLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** A model the server can serve: it must report score distributions to answer judge requests. */
export type ServableBackend = ModelBackend & ScoreDistributions;

export interface OpenAiServerOptions {
  /** The model; it must report score distributions to answer judge requests. */
  backend: ServableBackend;
  /** The name clients ask for in `model` and `/v1/models` lists. */
  model: string;
  /**
   * Opens the adapter at a `lora_path` as a model of its own; enables `/v1/load_lora_adapter` and
   * `/v1/unload_lora_adapter` (without it they answer 404, as vLLM's do when runtime LoRA updating
   * is off). Throw {@link AdapterNotFoundError} when nothing is at the path (a 404, as vLLM
   * answers a missing adapter), {@link AdapterBaseMismatchError} when the adapter was trained from
   * another base (422); any other error is a 400 carrying its message.
   */
  openAdapter?: (path: string) => Promise<ServableBackend>;
  /** Interface to listen on (default 127.0.0.1: only this machine). */
  host?: string;
  /** Port; 0 = any free one (default 0). */
  port?: number;
  /** How long a request waits for others to share its batch (default 5 ms). */
  batchWindowMs?: number;
  /** Most requests in one batch (default 64). */
  maxBatch?: number;
  /** Largest accepted request body (default 64 MiB; larger gets 413). */
  maxBodyBytes?: number;
  /** Most bytes of request bodies held at once, all requests together (default 256 MiB; beyond gets 503). */
  maxBodyBytesInFlight?: number;
  /** Most requests between arrival and answer (default 512; beyond gets 503 with Retry-After). */
  maxInFlight?: number;
  /** Most adapters loaded at once (default 16); a load beyond is refused with 409, nothing is evicted. */
  maxAdapters?: number;
  /** Longest close() waits for loads and model work to finish before cutting them off (default 3000 ms). */
  closeGraceMs?: number;
  /** Traffic summary period (default 10 s). */
  summaryEveryMs?: number;
  log?: ServeLog;
}

/** What one served model (the base or an adapter) has done since it was loaded. */
export interface ModelStats extends BatchStats {
  /** Chat requests routed to it. */
  requests: number;
}

/** What the server has done since it started; the batch counters are the base model's. */
export interface ServerStats extends BatchStats {
  /** HTTP requests answered, errors included. */
  requests: number;
  errors: number;
  /** Per served model, the base and each adapter loaded now (an unloaded adapter's counters go with it). */
  models: Record<string, ModelStats>;
}

export interface OpenAiServer {
  /** `http://host:port` (the API is under `/v1`). */
  url: string;
  stats(): ServerStats;
  /**
   * Stops listening, lets queued and running work finish, disposes the loaded adapters, then
   * closes every connection. The base backend stays the caller's to dispose.
   */
  close(): Promise<void>;
}

/** What an `openAdapter` throws when there is no adapter at the path (404), or one of another base (422). */
export { AdapterBaseMismatchError, AdapterNotFoundError };

/** Whether a backend can be served (it must report score distributions for judge requests). */
export function canServe(backend: ModelBackend): backend is ServableBackend {
  return typeof backend.judgeDistributions === "function";
}

const MIB = 1024 * 1024;

/** What a handler learnt of the request, for its log line (also when it then fails); `gone` aborts when the client hangs up unanswered. */
type Seen = { request?: ChatRequest; model?: string; ticket?: Ticket; res: ServerResponse; gone: AbortSignal };

/** What a handler returns when it has answered by itself (a stream, `/metrics`). */
const SENT: unique symbol = Symbol("sent");

/** The status a request is counted under when its client closed the connection before the answer (nginx's "client closed request"); never sent. */
const CLIENT_GONE = 499;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The adapter routes, as vLLM names them. */
const LOAD = "/v1/load_lora_adapter";
/** `GET /v1/models/{id}`'s prefix. */
const MODEL_PREFIX = "/v1/models/";
const UNLOAD = "/v1/unload_lora_adapter";

/** Starts the server; resolves once it listens. */
export async function startOpenAiServer(options: OpenAiServerOptions): Promise<OpenAiServer> {
  const { backend, model, log, openAdapter } = options;
  const host = options.host ?? "127.0.0.1";
  const admission = new Admission({
    maxBodyBytes: options.maxBodyBytes ?? 64 * MIB,
    maxBodyBytesInFlight: options.maxBodyBytesInFlight ?? 256 * MIB,
    maxInFlight: options.maxInFlight ?? 512,
  });
  const maxAdapters = options.maxAdapters ?? 16;
  const graceMs = options.closeGraceMs ?? 3000;
  const batching = { windowMs: options.batchWindowMs ?? 5, maxBatch: options.maxBatch ?? 64 };
  const serve = (name: string, backend: ServableBackend, root: string, parent: string | null): Served => ({
    name,
    backend,
    batcher: new MicroBatcher(backend, batching),
    root,
    parent,
    created: Math.floor(Date.now() / 1000),
    requests: 0,
  });
  const base = serve(model, backend, model, null);
  const counts = { requests: 0, errors: 0 };
  let shuttingDown = false;
  const adapters = new AdapterRegistry({ base: model, maxAdapters, log, open: openAdapter, serve });
  const metrics = new ServeMetrics(() => ({ inFlight: admission.load.requests, adapters: adapters.size }));

  const readJson = async (req: IncomingMessage, seen: Seen): Promise<unknown> => {
    const raw = await seen.ticket!.readBody(req);
    try {
      return JSON.parse(raw.toString("utf8"));
    } catch (error) {
      throw new ApiError(400, `malformed JSON body: ${(error as Error).message}`);
    }
  };

  const chat = async (req: IncomingMessage, seen: Seen): Promise<object | typeof SENT> => {
    const body = await readJson(req, seen);
    // The model the body names; an unknown name goes to the base's parser, which refuses it with vLLM's 404.
    const named = isObject(body) && typeof body.model === "string" ? adapters.get(body.model) : undefined;
    const served = named ?? base;
    const request = (seen.request = parseChatRequest(body, served.name));
    seen.model = served.name;
    if (request.logprobs && request.kind === "answer" && !served.backend.generateDetailed) {
      throw new ApiError(400, "'logprobs' on answers needs a model that reports its tokens; this one does not", { param: "logprobs" });
    }
    // No await between the lookup and the batcher taking the work: an unload that removes the
    // model after this point finds the work queued and lets it finish before disposing.
    const replies = complete(served, request, seen.gone);
    if (!request.stream) {
      const done = completionBody(served.name, choicesOf(await replies, request), request.promptWords);
      metrics.usage(served.name, done.usage.prompt_tokens, done.usage.completion_tokens);
      return done;
    }
    const head = completionBody(served.name, [], request.promptWords);
    const stream = new CompletionStream(seen.res, { id: head.id, created: head.created, model: served.name, n: request.n, includeUsage: request.includeUsage });
    stream.start();
    try {
      const done = completionBody(served.name, choicesOf(await replies, request), request.promptWords);
      metrics.usage(served.name, done.usage.prompt_tokens, done.usage.completion_tokens);
      stream.finish(done.choices, done.usage);
    } catch (error) {
      // A client that hung up mid-stream reads nothing more: nothing failed on our side.
      if (seen.gone.aborted) return SENT;
      const e = error instanceof ApiError ? error : new ApiError(500, String(error));
      counts.errors++;
      stream.fail(errorBody(e.status, e.message, e.param));
    }
    return SENT;
  };

  const complete = async (served: Served, request: ChatRequest, gone: AbortSignal): Promise<Reply[]> => {
    served.requests++;
    try {
      if (request.kind === "judge") {
        const rows = await served.batcher.distributions(request.item, gone);
        const asked = request.criteria.map((c) => rows[CRITERIA.indexOf(c)]!);
        return request.reply === "digit" ? judgeReplies(asked[0]!, request) : judgeLineReplies(request.criteria, asked, request);
      }
      const topP = request.topP < 1 ? request.topP : undefined;
      const answers = await served.batcher.answers(
        request.prompt,
        { k: request.n, temperature: request.temperature, maxTokens: request.maxTokens, topP },
        gone,
      );
      return "detailed" in answers ? answerReplies(answers.detailed, request) : plainAnswerReplies(answers.plain, request);
    } catch (error) {
      if (error instanceof CancelledError) throw new ApiError(500, error.message, { cause: error });
      throw new ApiError(500, `the model failed: ${(error as Error).message}`, { cause: error });
    }
  };

  /** A string field of an adapter request; vLLM's request model refuses other types with a 400. */
  const stringField = (body: Json, name: string): string => {
    const v = body[name];
    if (v === undefined || v === null) return "";
    if (typeof v !== "string") throw new ApiError(400, `'${name}' must be a string`);
    return v;
  };

  const loadAdapter = async (req: IncomingMessage, seen: Seen) => {
    const body = await readJson(req, seen);
    if (!isObject(body)) throw new ApiError(400, "the request body must be a JSON object");
    const name = stringField(body, "lora_name");
    const path = stringField(body, "lora_path");
    seen.model = name || undefined;
    if (!name || !path) throw invalidInput("Both 'lora_name' and 'lora_path' must be provided.");
    const inplace = body.load_inplace ?? false;
    if (typeof inplace !== "boolean") throw new ApiError(400, "'load_inplace' must be true or false", { param: "load_inplace" });
    // vLLM does not check this, and then routes the name to the base (older releases) or to the adapter, hiding the base (newer): refuse it.
    if (name === model) throw invalidInput(`The lora adapter '${name}' cannot take the base model's name; pick another 'lora_name'.`);
    return adapters.load(name, path, inplace);
  };

  const unloadAdapter = async (req: IncomingMessage, seen: Seen) => {
    const body = await readJson(req, seen);
    if (!isObject(body)) throw new ApiError(400, "the request body must be a JSON object");
    const name = stringField(body, "lora_name");
    seen.model = name || undefined;
    if (!name) throw invalidInput("'lora_name' needs to be provided to unload a LoRA adapter.");
    return adapters.unload(name);
  };

  const card = (m: Served) => ({ id: m.name, object: "model", created: m.created, owned_by: "pop", root: m.root, parent: m.parent });
  /** `GET /v1/models/{id}`: the id is the rest of the path, URL-decoded (as the official clients encode it). */
  const oneModel = async (req: IncomingMessage) => {
    const raw = (req.url ?? "").split("?")[0]!.slice(MODEL_PREFIX.length);
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      id = raw;
    }
    const m = id === base.name ? base : adapters.get(id);
    if (!m) throw new TypedApiError(404, `The model \`${id}\` does not exist.`, "NotFoundError", "model");
    return card(m);
  };
  const metricsText = async (_req: IncomingMessage, seen: Seen): Promise<typeof SENT> => {
    const text = await metrics.render();
    seen.res.writeHead(200, { "content-type": metrics.contentType, "content-length": Buffer.byteLength(text) });
    seen.res.end(text);
    return SENT;
  };

  type Route = { method: string; handle: (req: IncomingMessage, seen: Seen) => Promise<object | string | undefined | typeof SENT> };
  const routes: Record<string, Route> = {
    "/v1/models": { method: "GET", handle: async () => ({ object: "list", data: [base, ...adapters.values()].map(card) }) },
    [`${MODEL_PREFIX}{id}`]: { method: "GET", handle: oneModel },
    "/v1/chat/completions": { method: "POST", handle: chat },
    "/metrics": { method: "GET", handle: metricsText },
    // vLLM's readiness probe: 200 with an empty body once the model is up.
    "/health": { method: "GET", handle: async () => undefined },
  };
  // Without a way to open adapters the routes do not exist, as in a vLLM without runtime LoRA updating.
  if (openAdapter) {
    routes[LOAD] = { method: "POST", handle: loadAdapter };
    routes[UNLOAD] = { method: "POST", handle: unloadAdapter };
  }
  const routeList = Object.entries(routes)
    .filter(([path]) => path.startsWith("/v1/"))
    .map(([path, r]) => `${r.method} ${path}`)
    .join(", ");

  const server = createServer((req, res) => {
    const t0 = performance.now();
    const path = (req.url ?? "/").split("?")[0]!;
    const hangUp = new AbortController();
    // A client that closes the connection before its answer has left: its queued work is dropped.
    res.once("close", () => {
      if (!res.writableFinished) hangUp.abort();
    });
    const seen: Seen = { res, gone: hangUp.signal };
    // The route's pattern names it in metrics: a raw path would let clients make label values without end.
    const pattern = path.startsWith(MODEL_PREFIX) && path.length > MODEL_PREFIX.length ? `${MODEL_PREFIX}{id}` : path;
    const label = routes[pattern] ? pattern : "unmatched";
    const answer = async () => {
      // Monitoring reads the server however busy it is.
      if (pattern === "/metrics" && req.method === "GET") return { status: 200, body: await metricsText(req, seen) };
      if (shuttingDown) throw new ShuttingDownError();
      seen.ticket = admission.enter();
      // The share is held until the answer has left (or the client has gone).
      res.once("close", seen.ticket.release);
      const route = routes[pattern];
      if (!route) {
        const off = path === LOAD || path === UNLOAD ? " (runtime LoRA adapter loading is not enabled on this server)" : "";
        throw new ApiError(404, `no route ${req.method} ${path}${off}; this server has ${routeList}`);
      }
      if (req.method !== route.method) {
        res.setHeader("allow", route.method);
        throw new ApiError(405, `${path} takes ${route.method}, not ${req.method}`);
      }
      return { status: 200, body: await route.handle(req, seen) };
    };
    answer()
      .catch((error: unknown) => {
        if (hangUp.signal.aborted) return { status: CLIENT_GONE, body: SENT as typeof SENT };
        const e = error instanceof ApiError ? error : new ApiError(500, (error as Error)?.message ?? String(error));
        counts.errors++;
        // A refused body may still be arriving: close the connection after answering rather than read it all.
        if (!req.complete) {
          res.setHeader("connection", "close");
          // Discarded as it comes, so the client can finish sending and read the answer.
          req.resume();
        }
        if (e instanceof ServerBusyError) res.setHeader("retry-after", String(e.retryAfterS));
        const body = errorBody(e.status, e.message, e.param, e instanceof TypedApiError ? e.type : undefined);
        return { status: e.status, body: body as object | string | undefined | typeof SENT };
      })
      .then((answered) => {
        // The client hung up before its whole answer left: counted apart (nginx's 499), neither as served nor as the server's error.
        const { status, body } = hangUp.signal.aborted ? { status: CLIENT_GONE, body: SENT } : answered;
        counts.requests++;
        metrics.request(label, status, (performance.now() - t0) / 1000);
        if (typeof body !== "symbol") send(res, status, body);
        log?.debug(
          { method: req.method, path, status, ms: Math.round(performance.now() - t0), model: seen.model, kind: seen.request?.kind, n: seen.request?.n },
          "request",
        );
      })
      .catch(() => undefined); // a client that hung up cannot be answered; nothing else can throw here
  });

  /** Batch counters over every model ever served, for the traffic summary. */
  const totals = () =>
    [base, ...adapters.values()].reduce((t, m) => {
      const b = m.batcher.stats();
      return { items: t.items + b.items, batches: t.batches + b.batches };
    }, adapters.retiredTotals());
  let last = { requests: 0, batches: 0, items: 0 };
  const summary = setInterval(() => {
    const b = totals();
    const now = { requests: counts.requests, batches: b.batches, items: b.items };
    if (now.requests === last.requests) return;
    const batches = now.batches - last.batches;
    log?.info(
      {
        requests: now.requests - last.requests,
        batches,
        meanBatch: batches ? Number(((now.items - last.items) / batches).toFixed(2)) : 0,
        errors: counts.errors,
        ...(adapters.size ? { adapters: adapters.size } : {}),
      },
      "served",
    );
    last = now;
  }, options.summaryEveryMs ?? 10_000);
  summary.unref();

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((error: NodeJS.ErrnoException) => {
    clearInterval(summary);
    throw new Error(
      `cannot listen on ${host}:${options.port ?? 0}: ${error.code === "EADDRINUSE" ? "the port is in use (pick another with --port, or 0 for any free one)" : error.message}`,
      { cause: error },
    );
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    stats: () => ({
      ...counts,
      ...base.batcher.stats(),
      models: Object.fromEntries([base, ...adapters.values()].map((m) => [m.name, { requests: m.requests, ...m.batcher.stats() }])),
    }),
    close: () =>
      (closing ??= (async () => {
        shuttingDown = true;
        adapters.shutDown();
        clearInterval(summary);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const finishing = (async () => {
          await Promise.all([base.batcher.drain(), adapters.retireAll()]);
        })();
        // Work that outlasts the grace is cut off: a stop must not wait on a slow model call or load.
        const graceOver = await Promise.race([finishing.then(() => false), sleep(graceMs).then(() => true)]);
        if (graceOver) {
          log?.info({ graceMs, requests: admission.load.requests }, "stopping without waiting for the work still running");
          // Whatever finishes later finds the adapters gone; their backends are freed now.
          void finishing.catch(() => undefined);
          await adapters.disposeAll();
        } else {
          // Give the last responses a moment to leave before cutting keep-alive connections.
          await Promise.race([closed, sleep(200)]);
        }
        server.closeAllConnections();
        await closed;
      })()),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Sends a JSON body, a plain-text one (vLLM's adapter endpoints answer success as text), or an empty one for a bare 200, unless the client has gone. */
function send(res: ServerResponse, status: number, body: object | string | undefined): void {
  if (res.headersSent || res.destroyed) return;
  const text = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
  const type = typeof body === "string" ? "text/plain; charset=utf-8" : "application/json";
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text) });
  res.end(text);
}
