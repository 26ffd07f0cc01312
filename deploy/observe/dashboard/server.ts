/**
 * The dashboard's web server: the page, its live data over server-sent events, the pair browser's
 * queries and the pairs' images. Read-only; GET only.
 *
 *   GET /                                  the page
 *   GET /api/state                         the live view's data with its plots drawn (JSON)
 *   GET /api/events                        the same, pushed every second (text/event-stream)
 *   GET /api/pairs?iteration&member&suite&minMargin&maxMargin&offset&limit
 *   GET /api/pairs/<pairId>                one pair with every judge's scores
 *   GET /api/pairs/<pairId>/image/<i>      its i-th image (PNG, or the stored JPEG)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ImageRef } from "../../../protocol/mod.ts";
import { encodePng } from "../../../actors/images/png-encode.ts";
import type { DashboardState, PairQuery } from "./state.ts";
import { dashboardPage } from "./page.ts";
import { dashboardCharts } from "./charts.ts";
import { readPageAssets, type PageAssets } from "./assets.ts";

/** An image as the object store gives it back. */
export interface FetchedImage {
  format: ImageRef["format"];
  width: number;
  height: number;
  data: Uint8Array;
}

export interface DashboardServerOptions {
  state: DashboardState;
  fetchImage: (ref: ImageRef) => Promise<FetchedImage>;
  /** How often the live data is pushed (ms). */
  pushMs?: number;
  /** What the page inlines (default: uPlot read from node_modules when the server is made). */
  assets?: PageAssets;
}

/** A request the dashboard cannot read (400): its own fault, never a server error. */
export class BadDashboardRequestError extends Error {
  readonly status = 400;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BadDashboardRequestError";
  }
}

/** A path segment's percent escapes decoded; a malformed one (`%E0%A4%A`) is the client's 400. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch (error) {
    throw new BadDashboardRequestError(`malformed percent escape in '${segment.slice(0, 200)}'`, { cause: error });
  }
}

/** The request target as a URL; one that does not parse (an absolute form such as `http://[`) is a 400. */
function requestUrl(target: string): URL {
  try {
    return new URL(target, "http://dashboard");
  } catch (error) {
    throw new BadDashboardRequestError("the request target is not a URL", { cause: error });
  }
}

/** Images served lately, by hash: a browsing researcher opens the same few again and again. */
const IMAGE_CACHE = 256;

export class DashboardServer {
  private readonly server: Server;
  private readonly streams = new Set<ServerResponse>();
  private readonly images = new Map<string, { type: string; body: Uint8Array }>();
  private timer?: NodeJS.Timeout;
  /** The page, made once: uPlot inlined is some 60 kB. */
  private readonly page: string;

  constructor(private readonly opts: DashboardServerOptions) {
    this.page = dashboardPage(opts.state.experiment, opts.assets ?? readPageAssets());
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        const status = e instanceof BadDashboardRequestError ? e.status : 500;
        if (!res.headersSent)
          send(res, status, "text/plain; charset=utf-8", `${status === 500 ? "error: " : ""}${e instanceof Error ? e.message : String(e)}\n`);
        else res.end();
      });
    });
  }

  /** Listens on host:port (port 0: any free one) and returns the address reached. */
  async listen(port: number, host: string): Promise<{ url: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    this.timer = setInterval(() => this.push(), this.opts.pushMs ?? 1000);
    const shown = host.includes(":") ? `[${host}]` : host;
    return { url: `http://${shown}:${a.port}/`, port: a.port };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const s of this.streams) s.end();
    this.streams.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  /** The live view: the state's snapshot and its plots. */
  private view(): string {
    const snapshot = this.opts.state.snapshot(Date.now());
    return JSON.stringify({ ...snapshot, charts: dashboardCharts(snapshot) });
  }

  private push(): void {
    if (this.streams.size === 0) return;
    const data = `data: ${this.view()}\n\n`;
    for (const s of this.streams) s.write(data);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain; charset=utf-8", "read-only: GET only\n", { allow: "GET, HEAD" });
    const url = requestUrl(req.url ?? "/");
    const path = url.pathname;
    const { state } = this.opts;
    if (path === "/") return send(res, 200, "text/html; charset=utf-8", this.page);
    if (path === "/favicon.ico") return send(res, 204, "text/plain", "");
    if (path === "/api/state") return send(res, 200, "application/json", this.view(), { "cache-control": "no-store" });
    if (path === "/api/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write(`data: ${this.view()}\n\n`);
      this.streams.add(res);
      req.on("close", () => this.streams.delete(res));
      return;
    }
    if (path === "/api/pairs") {
      const q = pairQuery(url.searchParams);
      if (typeof q === "string") return send(res, 400, "text/plain; charset=utf-8", `${q}\n`);
      return json(res, { ...state.queryPairs(q), suites: state.suiteNames() });
    }
    const image = /^\/api\/pairs\/([^/]+)\/image\/(\d+)$/.exec(path);
    if (image) {
      const ref = state.image(decodeSegment(image[1]!), Number(image[2]));
      if (!ref) return send(res, 404, "text/plain; charset=utf-8", "no such pair or image\n");
      const img = await this.image(ref);
      return send(res, 200, img.type, img.body, { "cache-control": "max-age=86400, immutable" });
    }
    const pair = /^\/api\/pairs\/([^/]+)$/.exec(path);
    if (pair) {
      const detail = state.pair(decodeSegment(pair[1]!));
      return detail ? json(res, detail) : send(res, 404, "text/plain; charset=utf-8", "no such pair (kept: the latest ones)\n");
    }
    return send(res, 404, "text/plain; charset=utf-8", "not found\n");
  }

  private async image(ref: ImageRef): Promise<{ type: string; body: Uint8Array }> {
    const had = this.images.get(ref.hash);
    if (had) return had;
    const img = await this.opts.fetchImage(ref);
    const out =
      img.format === "rgb8"
        ? { type: "image/png", body: encodePng(img.width, img.height, img.data) }
        : { type: img.format === "png" ? "image/png" : "image/jpeg", body: img.data };
    this.images.set(ref.hash, out);
    if (this.images.size > IMAGE_CACHE) this.images.delete(this.images.keys().next().value!);
    return out;
  }
}

/** The pair browser's filters from a query string; a string says what is wrong. */
export function pairQuery(p: URLSearchParams): PairQuery | string {
  const q: PairQuery = {};
  const num = (name: string, int: boolean): number | undefined | string => {
    const v = p.get(name);
    if (v === null || v === "") return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || (int && (!Number.isInteger(n) || n < 0))) return `${name} must be ${int ? "a whole number >= 0" : "a number"}, got '${v}'`;
    return n;
  };
  for (const [name, int] of [
    ["iteration", true],
    ["offset", true],
    ["limit", true],
    ["minMargin", false],
    ["maxMargin", false],
  ] as const) {
    const n = num(name, int);
    if (typeof n === "string") return n;
    if (n !== undefined) q[name] = n;
  }
  const member = p.get("member");
  if (member) q.member = member;
  const suite = p.get("suite");
  if (suite) q.suite = suite;
  return q;
}

function json(res: ServerResponse, body: unknown): void {
  send(res, 200, "application/json", JSON.stringify(body), { "cache-control": "no-store" });
}

function send(res: ServerResponse, status: number, type: string, body: string | Uint8Array, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": type, "x-content-type-options": "nosniff", ...headers });
  res.end(body);
}
