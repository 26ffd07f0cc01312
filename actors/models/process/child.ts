/**
 * One run of a peer program: started through `/bin/sh -c` in its own process group (so a stop
 * reaches whatever it started), its stdout read as lines, its stderr lines passed to the log and
 * the last ones kept for errors, and a stop that asks politely before it insists: stdin closed
 * (the program's cue to exit), then SIGTERM, then SIGKILL. Every run still alive when this
 * process exits is killed with it, so no program outlives its actor.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { killGroup } from "../../process/command.ts";

/** Stderr lines kept for error messages. */
export const STDERR_TAIL = 20;
/** Longest stderr line passed to the log. */
const MAX_LOG_LINE = 4_000;

/** Where a run's stderr lines go (a pino logger fits). */
export interface ChildLog {
  info(fields: object, msg: string): void;
}

/** What a run reports to its owner. */
export interface ChildEvents {
  line(line: string): void;
  exit(code: number | null, signal: NodeJS.Signals | null): void;
}

const alive = new Set<PeerChild>();
let exitHook = false;
function track(child: PeerChild): void {
  if (!exitHook) {
    exitHook = true;
    // Synchronous: the last chance to take the programs along when this process ends.
    process.on("exit", () => {
      for (const c of alive) c.kill();
    });
  }
  alive.add(child);
}

/** A running peer program. */
export class PeerChild {
  readonly stderrTail: string[] = [];
  readonly exited: Promise<void>;
  private readonly proc: ChildProcessByStdio<Writable, Readable, Readable>;
  private done = false;

  constructor(command: string, events: ChildEvents, log: ChildLog | undefined, env?: Record<string, string>) {
    this.proc = spawn("/bin/sh", ["-c", command], { detached: true, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
    track(this);
    // A write to a program that has exited fails with EPIPE; the exit event reports it.
    this.proc.stdin.on("error", () => undefined);
    createInterface({ input: this.proc.stdout, crlfDelay: Infinity }).on("line", (line) => events.line(line));
    createInterface({ input: this.proc.stderr, crlfDelay: Infinity }).on("line", (line) => {
      const shown = line.length > MAX_LOG_LINE ? `${line.slice(0, MAX_LOG_LINE)}...` : line;
      this.stderrTail.push(shown);
      if (this.stderrTail.length > STDERR_TAIL) this.stderrTail.shift();
      log?.info({ stream: "stderr", command: "peer" }, shown);
    });
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.done) return;
        this.done = true;
        alive.delete(this);
        // Whatever the program left running in its group ends with it.
        if (this.proc.pid !== undefined) killGroup(this.proc.pid, "SIGKILL");
        resolve();
        events.exit(code, signal);
      };
      this.proc.once("exit", finish);
      this.proc.once("error", () => finish(null, null));
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return !this.done;
  }

  /** Writes one message as a line; false when the program can no longer read. */
  send(message: unknown): boolean {
    if (this.done || !this.proc.stdin.writable) return false;
    this.proc.stdin.write(`${JSON.stringify(message)}\n`);
    return true;
  }

  /** Ends the run: stdin closed, SIGTERM after `graceMs`, SIGKILL `graceMs` later. Resolves once it has exited. */
  async stop(graceMs: number): Promise<void> {
    if (this.done) return;
    this.proc.stdin.end();
    if (await this.exitsWithin(graceMs)) return;
    if (this.proc.pid !== undefined) killGroup(this.proc.pid, "SIGTERM");
    if (await this.exitsWithin(graceMs)) return;
    this.kill();
    await this.exited;
  }

  /** SIGKILL to the whole group now (synchronous). */
  kill(): void {
    if (this.proc.pid !== undefined) killGroup(this.proc.pid, "SIGKILL");
  }

  private async exitsWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.exited.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }
}
