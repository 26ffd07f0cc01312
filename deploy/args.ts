/** Command-line flags: `--name value` and `--flag`, with typed readers that explain mistakes. */
import { DEFAULT_SERVER } from "./connect.ts";
import type { LogFormat } from "./log.ts";
import { ConnectionOptionsError, natsTarget, type NatsTarget } from "./nats-options.ts";

/** A command was called wrongly; the message says how, and `help` shows the right way. */
export class UsageError extends Error {
  constructor(message: string, readonly help: string) {
    super(message);
    this.name = "UsageError";
  }
}

export class Flags {
  private readonly values = new Map<string, string | true>();
  private readonly used = new Set<string>();

  constructor(argv: string[], private readonly help: string) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (!a.startsWith("--")) throw new UsageError(`unexpected argument '${a}'`, help);
      const eq = a.indexOf("=");
      if (eq > 0) {
        this.values.set(a.slice(2, eq), a.slice(eq + 1));
      } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) {
        this.values.set(a.slice(2), argv[++i]!);
      } else {
        this.values.set(a.slice(2), true);
      }
    }
  }

  string(name: string): string | undefined {
    this.used.add(name);
    const v = this.values.get(name);
    if (v === true) throw new UsageError(`--${name} needs a value`, this.help);
    return v;
  }

  bool(name: string): boolean {
    this.used.add(name);
    const v = this.values.get(name);
    if (v === undefined) return false;
    if (v === true || v === "true") return true;
    if (v === "false") return false;
    throw new UsageError(`--${name} takes no value (got '${v}')`, this.help);
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

  server(): string {
    return this.string("server") ?? DEFAULT_SERVER;
  }

  /**
   * The standard connection options (deploy/nats-options.ts, listed by NATS_OPTIONS_HELP): the
   * server URLs and the credentials from flags, the URL or the environment.
   */
  nats(): NatsTarget {
    const servers = this.server();
    try {
      return natsTarget(servers, {
        creds: this.string("creds"), nkey: this.string("nkey"), user: this.string("user"), password: this.string("password"),
        tlsCa: this.string("tls-ca"), tlsCert: this.string("tls-cert"), tlsKey: this.string("tls-key"),
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

  /** Throws on any flag no reader asked for (call after reading all flags). */
  rejectUnknown(): void {
    const unknown = [...this.values.keys()].filter((k) => !this.used.has(k));
    if (unknown.length) throw new UsageError(`unknown option${unknown.length > 1 ? "s" : ""}: ${unknown.map((u) => `--${u}`).join(", ")}`, this.help);
  }
}
