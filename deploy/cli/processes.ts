/** Child processes of the demo: each pop command in its own process, its log in a file. */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { nodeArgsFor } from "./node-args.ts";
import { parentWatchEnv } from "./parent-watch.ts";

const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));

export class PopProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly args: string[],
    readonly logFile: string,
  ) {
    const fd = openSync(logFile, "a");
    // Its own process group: a terminal's Ctrl-C reaches only this process, which stops its
    // children in order (peers before the server they leave through). POP_PARENT_PID: the child
    // stops by itself when this process is gone, even after a SIGKILL (deploy/cli/parent-watch.ts).
    this.child = spawn(process.execPath, [...nodeArgsFor(args), "--import", "tsx", CLI, ...args], {
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...parentWatchEnv() },
      detached: true,
    });
    closeSync(fd);
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve(signal ? null : code)));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Graceful stop (SIGTERM), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** A crash: SIGKILL, no clean-up. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  logTail(lines = 15): string {
    try {
      return readFileSync(this.logFile, "utf8").trim().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}
