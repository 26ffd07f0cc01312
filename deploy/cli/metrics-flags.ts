/** `--metrics-port` / `--metrics-host` of `pop actor` and `pop coordinator`: Prometheus' `/metrics` on a port of their own. */
import { serveMetrics, type MetricsServer, type MetricsSource } from "../../protocol/mod.ts";
import type { Flags } from "./args.ts";

export const METRICS_OPTIONS_HELP = `Prometheus metrics (off unless --metrics-port is given):
  --metrics-port N     serve GET /metrics in Prometheus' text format on port N (0: any free one)
  --metrics-host HOST  interface it listens on (0.0.0.0: every one)          default: 127.0.0.1`;

/** The metrics options given, or undefined when metrics are off. */
export function metricsOptions(flags: Flags): { port: number; host: string } | undefined {
  const port = flags.int("metrics-port", { min: 0, max: 65535 });
  const host = flags.string("metrics-host") ?? "127.0.0.1";
  return port === undefined ? undefined : { port, host };
}

/** Starts the metrics server when asked for, and says where it listens. */
export async function startMetrics(
  source: MetricsSource,
  options: { port: number; host: string } | undefined,
  log: { info(fields: object, msg: string): void },
): Promise<MetricsServer | undefined> {
  if (!options) return undefined;
  const server = await serveMetrics(source, options.port, options.host);
  log.info({ port: server.port, host: options.host }, `Prometheus metrics at http://${options.host}:${server.port}/metrics`);
  return server;
}
