/**
 * Logging for the command-line tools: pino underneath, printed as one readable line per event
 * (`2026-11-28 12:03:04 INFO  demo alice vm-12 it=1  trained  steps=12`) with --log-format pretty
 * (the default), or as one JSON object per line with --log-format json. Every line carries the
 * command's context (experiment, peer, instance) and the iteration it is at.
 */
import { pino, type Logger } from "pino";

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };
/** Context fields shown at the start of a pretty line, not among its fields. */
const CONTEXT = ["experiment", "peer", "instance"] as const;

function formatValue(v: unknown): string {
  if (typeof v === "string") return /\s/.test(v) ? JSON.stringify(v) : v;
  if (v instanceof Object && "message" in v && "name" in v) return JSON.stringify(`${(v as Error).name}: ${(v as Error).message}`);
  return JSON.stringify(v);
}

/** Local date and time to the millisecond: `2026-11-28 12:03:04.120`. */
function stamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** One readable line for a pino record (JSON text). */
export function prettyLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  const { level, time, msg, name, pid: _pid, hostname: _h, err, iteration, ...rest } = rec;
  const context = CONTEXT.map((k) => rest[k])
    .filter((v) => v !== undefined)
    .map(String);
  for (const k of CONTEXT) delete rest[k];
  if (iteration !== undefined) context.push(`it=${formatValue(iteration)}`);
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${formatValue(v)}`);
  if (err && typeof err === "object") fields.push(`error=${formatValue((err as { message?: string }).message ?? err)}`);
  const who = context.length ? context.join(" ") : String(name ?? "");
  return `${stamp(time as number)} ${LEVELS[level as number] ?? level} ${who.padEnd(20)}  ${msg ?? ""}${fields.length ? "  " + fields.join(" ") : ""}\n`;
}

/** A pino destination that writes one human-readable line per record. */
function prettyStream(out: { write(line: string): unknown }) {
  return { write: (line: string) => out.write(prettyLine(line)) };
}

/** "pretty" (readable lines, the default; "text" is the same) or "json" (one object per line). */
export type LogFormat = "pretty" | "json";
export const LOG_FORMATS = ["pretty", "json"] as const;

export interface LoggerOptions {
  level?: string;
  format?: LogFormat;
  /** Fields on every line: experiment, peer, instance (as known). */
  context?: Partial<Record<(typeof CONTEXT)[number], string>>;
  /** The iteration the command is at when a line is written (a line's own `iteration` wins). */
  iteration?: () => number | undefined;
  /** Where lines go (default: stderr). */
  out?: { write(line: string): unknown };
}

export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.POP_LOG_LEVEL ?? "info";
  const at = options.iteration;
  const config = {
    name,
    level,
    base: { ...(options.context ?? {}) },
    ...(at
      ? {
          mixin: () => {
            const i = at();
            return i === undefined ? {} : { iteration: i };
          },
        }
      : {}),
  };
  if (options.format === "json") return pino(config, options.out ?? pino.destination(2));
  return pino(config, prettyStream(options.out ?? process.stderr));
}
