/**
 * Backends are plugs: each kind is a folder that exports a {@link BackendPlug}, and the
 * composition layer (deploy/cli/backends.ts) registers the kinds it ships in one
 * {@link BackendRegistry}. The actor command reads `--backend KIND`, lets the plug read its own
 * options, and opens it; nothing else names a backend kind.
 */
import { PopError } from "../../protocol/mod.ts";
import type { ModelBackend } from "./contract.ts";

/** A backend could not be created, or a call into it failed. `retryable` says whether trying again may help. */
export class BackendError extends PopError {}

/** A backend's options are wrong (a missing flag, a value out of range); the message names the flag. */
export class BackendConfigError extends PopError {}

/** How a plug reads its command-line options (the CLI's flag parser implements it). */
export interface OptionReader {
  string(name: string): string | undefined;
  number(name: string, check?: { min?: number; max?: number }): number | undefined;
  int(name: string, check?: { min?: number; max?: number }): number | undefined;
  bool(name: string): boolean;
}

/** One option of a backend kind, as `pop actor --help` shows it. */
export interface BackendOption {
  /** Flag name without dashes, e.g. "base-url". */
  flag: string;
  /** Placeholder of the value, e.g. "URL"; absent for a switch. */
  value?: string;
  help: string;
  /** Shown as the default; absent when required or when the default needs explaining in `help`. */
  default?: string;
}

/** Where a backend is opened and what it may use while it runs. */
export interface PlugContext {
  /** The peer the backend serves (e.g. to find a shipped checkpoint named like it). */
  peer: string;
  /** Structured log lines from the backend (retries, abstentions). */
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** A backend kind: its options and how to open it. `Spec` is plain, serialisable data. */
export interface BackendPlug<Spec = unknown> {
  kind: string;
  /** One line for `--help`. */
  summary: string;
  options: BackendOption[];
  /** Reads and checks this kind's options; throws {@link BackendConfigError} naming the flag. */
  configure(read: OptionReader, context: PlugContext): Spec;
  /** Opens the backend (for a CPU-bound model, in a worker thread). */
  open(spec: Spec, context: PlugContext): Promise<ModelBackend>;
}

/** The backend kinds a build ships, by name. */
export class BackendRegistry {
  private readonly plugs = new Map<string, BackendPlug>();

  register<S>(plug: BackendPlug<S>): this {
    if (this.plugs.has(plug.kind)) throw new BackendConfigError(`backend kind '${plug.kind}' is registered twice`);
    this.plugs.set(plug.kind, plug as BackendPlug);
    return this;
  }

  kinds(): string[] {
    return [...this.plugs.keys()];
  }

  get(kind: string): BackendPlug {
    const plug = this.plugs.get(kind);
    if (!plug) throw new BackendConfigError(`unknown backend kind '${kind}'; available: ${this.kinds().join(", ")}`);
    return plug;
  }

  /** Every option flag of every kind (so the CLI can accept them). */
  allFlags(): string[] {
    return [...new Set([...this.plugs.values()].flatMap((p) => p.options.map((o) => o.flag)))];
  }

  /** The kinds and their options, for `pop actor --help`. */
  help(): string {
    const lines: string[] = [];
    for (const p of this.plugs.values()) {
      lines.push(`  ${p.kind.padEnd(8)} ${p.summary}`);
      for (const o of p.options) {
        const left = `--${o.flag}${o.value ? ` ${o.value}` : ""}`;
        lines.push(`    ${left.padEnd(24)} ${o.help}${o.default !== undefined ? ` (default: ${o.default})` : ""}`);
      }
    }
    return lines.join("\n");
  }
}
