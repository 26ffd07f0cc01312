/**
 * Command-line flags: `--name value`, `--name=value` and `--flag`, with typed readers that explain
 * mistakes. A command's options are the ones its help lists (a line `  --name VALUE  ...` takes a
 * value, `  --flag  ...` does not), and node's util.parseArgs parses exactly those: an option the
 * help does not list is refused, and a command that reads one fails at once, so the help and the
 * parsing cannot drift apart.
 */
import { parseArgs } from "node:util";
import { DEFAULT_SERVER } from "./connect.ts";
import type { LogFormat } from "./log.ts";
import { ConnectionOptionsError, natsTarget, type NatsTarget } from "../ops/nats-options.ts";

/** A command was called wrongly; the message says how, and `help` shows the right way. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly help: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

/** An option row of a help text: two spaces, the name, an upper-case value name if it takes one, then two spaces or the end. */
const OPTION_ROW = /^ {2,}--([a-z][a-z0-9-]*)(?: ([A-Z][A-Z0-9_,.-]*))?(?: {2,}|$)/;

/** The options a help text lists: name -> whether it takes a value. */
export function declaredOptions(help: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const line of help.split("\n")) {
    const m = OPTION_ROW.exec(line);
    if (m) out.set(m[1]!, m[2] !== undefined);
  }
  return out;
}

export class Flags {
  private readonly values = new Map<string, string | true>();
  /** Every value of an option given more than once, in order (`values` keeps the last). */
  private readonly repeated = new Map<string, string[]>();
  private readonly used = new Set<string>();
  private readonly declared: Map<string, boolean>;
  /** The arguments that are not options, for commands that take them (`pop compare RUN_A RUN_B`). */
  private readonly positional: string[] = [];

  constructor(
    argv: string[],
    private readonly help: string,
    options: { positionals?: boolean } = {},
  ) {
    this.declared = declaredOptions(help);
    const { tokens } = parseArgs({
      args: argv,
      options: Object.fromEntries([...this.declared].map(([name, takesValue]) => [name, { type: takesValue ? "string" : "boolean" } as const])),
      // Checked below, to say what is wrong in this project's words (and to keep `--flag=false`).
      strict: false,
      allowPositionals: true,
      tokens: true,
    });
    for (const t of tokens) {
      if (t.kind === "positional") {
        if (!options.positionals) throw new UsageError(`unexpected argument '${t.value}'`, help);
        this.positional.push(t.value);
        continue;
      }
      if (t.kind !== "option") continue;
      if (!this.declared.has(t.name)) throw new UsageError(`unknown option: ${t.rawName}`, help);
      if (this.declared.get(t.name)) {
        // `--a --b`: the next option is not --a's value.
        if (t.value === undefined || (!t.inlineValue && t.value.startsWith("--"))) throw new UsageError(`--${t.name} needs a value`, help);
        this.values.set(t.name, t.value);
        this.repeated.set(t.name, [...(this.repeated.get(t.name) ?? []), t.value]);
      } else {
        this.values.set(t.name, t.value ?? true);
      }
    }
  }

  /** A programming error, not a user's: the command reads an option its help does not list. */
  private declaredHere(name: string, value: boolean): void {
    const d = this.declared.get(name);
    if (d === undefined) throw new Error(`option --${name} is read but its command's help does not list it`);
    if (d !== value) throw new Error(`option --${name} is read ${value ? "with" : "without"} a value but its help lists it ${d ? "with" : "without"} one`);
    this.used.add(name);
  }

  string(name: string): string | undefined {
    this.declaredHere(name, true);
    const v = this.values.get(name);
    return v === true ? undefined : v;
  }

  /** Every value of an option that may be given more than once (`--member a=... --member b=...`), in order. */
  strings(name: string): string[] {
    this.declaredHere(name, true);
    return [...(this.repeated.get(name) ?? [])];
  }

  bool(name: string): boolean {
    this.declaredHere(name, false);
    const v = this.values.get(name);
    if (v === undefined) return false;
    if (v === true || v === "true") return true;
    if (v === "false") return false;
    throw new UsageError(`--${name} takes no value (got '${v}')`, this.help);
  }

  /** The arguments that are not options, in order (only for a command constructed to take them). */
  positionals(): string[] {
    return [...this.positional];
  }

  /** Whether the option was given (any option the help lists). */
  has(name: string): boolean {
    return this.values.has(name);
  }

  /**
   * The given options that `names` does not include, as arguments again: what a command passes
   * on to another (npm run demo:seeds hands the rest to each demo run).
   */
  rest(names: string[]): string[] {
    const out: string[] = [];
    for (const [name, v] of this.values) {
      if (names.includes(name)) continue;
      this.used.add(name);
      out.push(v === true ? `--${name}` : `--${name}=${v}`);
    }
    return out;
  }

  number(name: string, check?: { min?: number; max?: number }): number | undefined {
    const s = this.string(name);
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${s}'`, this.help);
    if (check?.min !== undefined && n < check.min) throw new UsageError(`--${name} must be >= ${check.min}, got ${n}`, this.help);
    if (check?.max !== undefined && n > check.max) throw new UsageError(`--${name} must be <= ${check.max}, got ${n}`, this.help);
    return n;
  }

  int(name: string, check?: { min?: number; max?: number }): number | undefined {
    const n = this.number(name, check);
    if (n !== undefined && !Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number, got ${n}`, this.help);
    return n;
  }

  /** A count that may also be the word `all` (e.g. --judges-per-author). */
  countOrAll(name: string): number | "all" | undefined {
    const s = this.string(name);
    if (s === undefined || s === "all") return s;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number >= 1 or 'all', got '${s}'`, this.help);
    return n;
  }

  server(): string {
    return this.string("server") ?? DEFAULT_SERVER;
  }

  /**
   * The standard connection options (deploy/ops/nats-options.ts, listed by NATS_OPTIONS_HELP): the
   * server URLs and the credentials from flags, the URL or the environment.
   */
  nats(): NatsTarget {
    const servers = this.server();
    try {
      return natsTarget(servers, {
        creds: this.string("creds"),
        nkey: this.string("nkey"),
        user: this.string("user"),
        password: this.string("password"),
        tlsCa: this.string("tls-ca"),
        tlsCert: this.string("tls-cert"),
        tlsKey: this.string("tls-key"),
        jsDomain: this.string("js-domain"),
      });
    } catch (error) {
      if (error instanceof ConnectionOptionsError) throw new UsageError(error.message, this.help);
      throw error;
    }
  }

  logFormat(): LogFormat {
    const f = this.string("log-format") ?? "pretty";
    // "text" was this option's first name for "pretty"; scripts that pass it keep working.
    if (f === "text") return "pretty";
    if (f !== "pretty" && f !== "json") throw new UsageError(`--log-format must be 'pretty' or 'json', got '${f}'`, this.help);
    return f;
  }

  /**
   * Call after reading all flags. Options the help does not list are refused when parsed; this
   * refuses listed ones that nothing read, i.e. that do not apply with the others given (an
   * option of another backend kind, say).
   */
  rejectUnknown(): void {
    const unread = [...this.values.keys()].filter((k) => !this.used.has(k));
    if (unread.length)
      throw new UsageError(
        `${unread.map((u) => `--${u}`).join(", ")} ${unread.length > 1 ? "do" : "does"} not apply with the other options given (see which options go together below)`,
        this.help,
      );
  }
}
