/**
 * Shell commands run as a reader runs them (`bash -c`, in a given folder), either to their end or
 * started and left running. Each runs in a process group of its own, so ending it by its PID
 * ends what it started too (npm, the shell, node); nothing else is signalled.
 */
import { spawn, type ChildProcess } from "node:child_process";

/** A command to its end. */
export interface Finished {
  code: number | null;
  output: string;
}

/** A command started and left running. */
export class Started {
  private text = "";
  private readonly exited: Promise<number | null>;
  /** The exit code, once the command has ended and its output is all read. */
  readonly closed: Promise<number | null>;

  constructor(
    readonly command: string,
    private readonly child: ChildProcess,
  ) {
    const take = (b: Buffer) => void (this.text += b.toString());
    child.stdout!.on("data", take);
    child.stderr!.on("data", take);
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    this.closed = new Promise((resolve) => child.on("close", (code) => resolve(code)));
  }

  /** stdout and stderr so far, interleaved. */
  get output(): string {
    return this.text;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once the output matches, or throws (with the output) after `ms` or when the command ends first. */
  async waitFor(pattern: RegExp, ms: number): Promise<RegExpMatchArray> {
    const until = Date.now() + ms;
    for (;;) {
      const m = this.text.match(pattern);
      if (m) return m;
      if (!this.running) throw new Error(`\`${this.command}\` ended (${this.child.exitCode}) before printing ${pattern}:\n${this.text.slice(-3000)}`);
      if (Date.now() > until) throw new Error(`\`${this.command}\` printed no ${pattern} in ${ms} ms:\n${this.text.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Ends the command's process group by its PID: SIGINT (Ctrl-C), then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-this.child.pid!, s);
      } catch {
        // already gone
      }
    };
    signal("SIGINT");
    const timer = setTimeout(() => signal("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
    // whatever of the group outlived its leader (a server started by the command)
    signal("SIGKILL");
  }
}

/** Runs commands in `cwd` with `env` added to this process's environment. */
export class ShellRunner {
  readonly started: Started[] = [];

  constructor(
    private readonly cwd: string,
    private readonly env: Record<string, string>,
  ) {}

  private spawn(command: string, env: Record<string, string>): ChildProcess {
    return spawn("bash", ["-c", command], { cwd: this.cwd, env: { ...process.env, ...this.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  }

  /** Starts a command and leaves it running (ended by `stop` or `stopAll`). */
  start(command: string, env: Record<string, string> = {}): Started {
    const s = new Started(command, this.spawn(command, env));
    this.started.push(s);
    return s;
  }

  /** Runs a command to its end (killed after `ms`). */
  run(command: string, ms: number, env: Record<string, string> = {}): Promise<Finished> {
    const s = this.start(command, env);
    const timer = setTimeout(() => void s.stop(2_000), ms);
    return s.closed.then((code) => {
      clearTimeout(timer);
      return { code, output: s.output };
    });
  }

  /** Ends every command still running, the last started first. */
  async stopAll(): Promise<void> {
    for (const s of [...this.started].reverse()) await s.stop();
  }
}
