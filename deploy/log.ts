/**
 * Logging for the command-line tools: pino underneath, printed as one readable line per event
 * (`12:03:04 INFO  alice  trained  iteration=1 steps=12`), or as JSON with --log-format json.
 */
import { pino, type Logger } from "pino";

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };

function formatValue(v: unknown): string {
  if (typeof v === "string") return /\s/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Object && "message" in v && "name" in v) return JSON.stringify(`${(v as Error).name}: ${(v as Error).message}`);
  return JSON.stringify(v);
}

/** A pino destination that writes one human-readable line per record. */
function textStream(out: NodeJS.WritableStream) {
  return {
    write(line: string) {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line);
      } catch {
        out.write(line);
        return;
      }
      const { level, time, msg, name, pid: _pid, hostname: _h, err, ...rest } = rec;
      const t = new Date(time as number).toISOString().slice(11, 19);
      const fields = Object.entries(rest).map(([k, v]) => `${k}=${formatValue(v)}`);
      if (err && typeof err === "object") fields.push(`error=${formatValue((err as { message?: string }).message ?? err)}`);
      out.write(`${t} ${LEVELS[level as number] ?? level} ${String(name ?? "").padEnd(12)} ${msg ?? ""}${fields.length ? "  " + fields.join(" ") : ""}\n`);
    },
  };
}

export type LogFormat = "text" | "json";

export function createLogger(name: string, options: { level?: string; format?: LogFormat } = {}): Logger {
  const level = options.level ?? process.env.POP_LOG_LEVEL ?? "info";
  if (options.format === "json") return pino({ name, level }, pino.destination(2));
  return pino({ name, level }, textStream(process.stderr));
}
