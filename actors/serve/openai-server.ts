/**
 * `pop serve`'s HTTP side: a model behind the OpenAI chat-completions API, in vLLM's dialect
 * (its model list, error shape and log-probs), on node:http alone. Judge requests written with
 * our rubric (actors/openai/rubric.ts) are answered from the model's score distribution, any
 * other request is a question; concurrent requests are micro-batched (./batcher.ts).
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
import type { ModelBackend, ScoreDistributions } from "../backend/types.ts";
import { MicroBatcher, type BatchStats } from "./batcher.ts";
import { answerChoices, completionBody, judgeChoices } from "./completion.ts";
import { ApiError, errorBody } from "./errors.ts";
import { parseChatRequest, type ChatRequest } from "./request.ts";

/** Where the server writes its log lines (a pino logger fits). */
export interface ServeLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface OpenAiServerOptions {
  /** The model; it must report score distributions to answer judge requests. */
  backend: ModelBackend & ScoreDistributions;
  /** The name clients ask for in `model` and `/v1/models` lists. */
  model: string;
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
  /** Traffic summary period (default 10 s). */
  summaryEveryMs?: number;
  log?: ServeLog;
}

/** What the server has done since it started. */
export interface ServerStats extends BatchStats {
  /** HTTP requests answered, errors included. */
  requests: number;
  errors: number;
}

export interface OpenAiServer {
  /** `http://host:port` (the API is under `/v1`). */
  url: string;
  stats(): ServerStats;
  /** Stops listening, lets queued and running work finish, then closes every connection. */
  close(): Promise<void>;
}

/** Whether a backend can be served (it must report score distributions for judge requests). */
export function canServe(backend: ModelBackend): backend is ModelBackend & ScoreDistributions {
  return typeof backend.judgeDistributions === "function";
}

const MIB = 1024 * 1024;

/** What a handler learnt of the request, for its log line (also when it then fails). */
type Seen = { request?: ChatRequest };

/** Starts the server; resolves once it listens. */
export async function startOpenAiServer(options: OpenAiServerOptions): Promise<OpenAiServer> {
  const { backend, model, log } = options;
  const host = options.host ?? "127.0.0.1";
  const maxBody = options.maxBodyBytes ?? 64 * MIB;
  const created = Math.floor(Date.now() / 1000);
  const batcher = new MicroBatcher(backend, { windowMs: options.batchWindowMs ?? 5, maxBatch: options.maxBatch ?? 64 });
  const counts = { requests: 0, errors: 0 };

  const chat = async (req: IncomingMessage, seen: Seen) => {
    const raw = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (error) {
      throw new ApiError(400, `malformed JSON body: ${(error as Error).message}`);
    }
    seen.request = parseChatRequest(body, model);
    return complete(seen.request);
  };

  const complete = async (request: ChatRequest) => {
    try {
      if (request.kind === "judge") {
        const rows = await batcher.distributions(request.item);
        return completionBody(model, judgeChoices(rows[CRITERIA.indexOf(request.criterion)]!, request), request.promptWords);
      }
      const answers = await batcher.answers(request.prompt, { k: request.n, temperature: request.temperature, maxTokens: request.maxTokens });
      return completionBody(model, answerChoices(answers), request.promptWords);
    } catch (error) {
      throw new ApiError(500, `the model failed: ${(error as Error).message}`, { cause: error });
    }
  };

  const routes: Record<string, { method: string; handle: (req: IncomingMessage, seen: Seen) => Promise<object | undefined> }> = {
    "/v1/models": {
      method: "GET",
      handle: async () => ({ object: "list", data: [{ id: model, object: "model", created, owned_by: "pop", root: model, parent: null }] }),
    },
    "/v1/chat/completions": { method: "POST", handle: chat },
    // vLLM's readiness probe: 200 with an empty body once the model is up.
    "/health": { method: "GET", handle: async () => undefined },
  };

  const server = createServer((req, res) => {
    const t0 = performance.now();
    const path = (req.url ?? "/").split("?")[0]!;
    const seen: Seen = {};
    const answer = async () => {
      const route = routes[path];
      if (!route) throw new ApiError(404, `no route ${req.method} ${path}; this server has GET /v1/models and POST /v1/chat/completions`);
      if (req.method !== route.method) {
        res.setHeader("allow", route.method);
        throw new ApiError(405, `${path} takes ${route.method}, not ${req.method}`);
      }
      return { status: 200, body: await route.handle(req, seen) };
    };
    answer()
      .catch((error: unknown) => {
        const e = error instanceof ApiError ? error : new ApiError(500, (error as Error)?.message ?? String(error));
        counts.errors++;
        // A refused body may still be arriving: close the connection after answering rather than read it all.
        if (e.status === 413) res.setHeader("connection", "close");
        return { status: e.status, body: errorBody(e.status, e.message) as object | undefined };
      })
      .then(({ status, body }) => {
        counts.requests++;
        send(res, status, body);
        log?.debug({ method: req.method, path, status, ms: Math.round(performance.now() - t0), kind: seen.request?.kind, n: seen.request?.n }, "request");
      })
      .catch(() => undefined); // a client that hung up cannot be answered; nothing else can throw here
  });

  let last = { requests: 0, batches: 0, items: 0 };
  const summary = setInterval(() => {
    const b = batcher.stats();
    const now = { requests: counts.requests, batches: b.batches, items: b.items };
    if (now.requests === last.requests) return;
    const batches = now.batches - last.batches;
    log?.info(
      { requests: now.requests - last.requests, batches, meanBatch: batches ? Number(((now.items - last.items) / batches).toFixed(2)) : 0, errors: counts.errors },
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
    throw new Error(`cannot listen on ${host}:${options.port ?? 0}: ${error.code === "EADDRINUSE" ? "the port is in use (pick another with --port, or 0 for any free one)" : error.message}`, { cause: error });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    stats: () => ({ ...counts, ...batcher.stats() }),
    close: () =>
      (closing ??= (async () => {
        clearInterval(summary);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        await batcher.drain();
        // Give the last responses a moment to leave before cutting keep-alive connections.
        await Promise.race([closed, new Promise((r) => setTimeout(r, 200))]);
        server.closeAllConnections();
        await closed;
      })()),
  };
}

/** Sends a JSON body (an empty one for a bare 200), unless the client has gone. */
function send(res: ServerResponse, status: number, body: object | undefined): void {
  if (res.headersSent || res.destroyed) return;
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** The request body, refusing (413) one over `limit` bytes as early as its headers say so. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new ApiError(413, `the request body is over the limit of ${limit % MIB === 0 ? `${limit / MIB} MiB` : `${limit} bytes`}`);
  if (Number(req.headers["content-length"]) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off("data", onData);
      req.resume(); // discard the rest until the connection closes
      reject(tooLarge());
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
