/**
 * The small HTTP server that exposes a process's Prometheus metrics at `/metrics` (the actor's and
 * the coordinator's `--metrics-port`). Here, in the one place both import, and on node:http only:
 * it takes any registry that renders the text format (prom-client's Registry does), so the
 * protocol itself needs no metrics library.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { PopError } from "./errors.ts";

/** What the server exposes: prom-client's Registry fits. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** A running metrics server. */
export interface MetricsServer {
  /** The port it listens on (the one chosen when 0 was asked for). */
  readonly port: number;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/** The port could not be opened (in use, not allowed). */
export class MetricsServerError extends PopError {}

/** Serves `GET /metrics` from `source` on `host:port` (port 0: any free one). */
export async function serveMetrics(source: MetricsSource, port: number, host = "127.0.0.1"): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics is served here\n");
      return;
    }
    source.metrics().then(
      (text) => res.writeHead(200, { "content-type": source.contentType }).end(req.method === "HEAD" ? undefined : text),
      (error: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`could not collect the metrics: ${(error as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(new MetricsServerError(`cannot serve metrics on ${host}:${port}: ${error.message}`, { cause: error, retryable: false })),
    );
    server.listen(port, host, () => resolve());
  });
  // Scrapes keep connections alive; a closing process must not wait for Prometheus to hang up.
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
