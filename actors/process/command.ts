/**
 * Running a user's command (an evaluation harness, a trainer) as a child of this process: through
 * `/bin/sh -c`, in its own process group so a timeout or a stop reaches everything it started,
 * its output lines streamed to a log, the last stderr lines kept for the error, and the whole
 * group ended when this process is stopped or exits.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { PopError } from "../../protocol/errors.ts";

/** The command could not start, exited non-zero, was killed, or ran past its timeout. */
export class CommandError extends PopError {
  /** The command's last stderr lines (up to {@link STDERR_TAIL}). */
  readonly stderrTail: string[];
  constructor(message: string, stderrTail: string[], options: { cause?: unknown } = {}) {
    const tail = stderrTail.length ? `\n--- last ${stderrTail.length} lines of stderr ---\n${stderrTail.join("\n")}` : "\n(no stderr output)";
    super(message + tail, options);
    this.stderrTail = stderrTail;
  }
}

/** Where the command's output lines go (a pino logger fits). */
export interface CommandLog {
  info(fields: object, msg: string): void;
}

/** Options of {@link runCommand}. */
export interface RunOptions {
  /** What the command is, for messages: "evaluation", "trainer". */
  label: string;
  /** Extra environment, on top of this process's. */
  env?: Record<string, string>;
  /** Kill the command after this long (default 24 h). */
  timeoutMs?: number;
  /** Receives each output line; default: the console. */
  log?: CommandLog;
  /** Called with the process group id once it runs (to record it, e.g. so a restart can end a stale run). */
  onSpawn?: (pid: number) => void;
  /** Also hears each output line, whole (e.g. to read a trainer's progress). */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
}

/** Stderr lines kept for the error message. */
export const STDERR_TAIL = 20;
const DEFAULT_TIMEOUT_MS = 24 * 3600_000;
/** Time between SIGTERM and SIGKILL: lets a harness or trainer write its partial results and exit. */
const KILL_GRACE_MS = 5_000;
/** Longest output line passed to the log (progress bars can make very long ones). */
const MAX_LINE = 4_000;

const consoleLog: CommandLog = {
  info: (fields, msg) => ((fields as { stream?: string }).stream === "stderr" ? console.error(msg) : console.log(msg)),
};

/** Sends a signal to the whole process group (the shell and everything it started). */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** A running command, as the process-wide stop handling sees it. */
interface Running {
  /** SIGTERM now, SIGKILL after a grace period. */
  stop(reason: string): void;
  /** SIGKILL now (synchronous: usable while the process exits). */
  kill(): void;
}
const running = new Set<Running>();

// Node is being stopped: end every running command with it. When nothing else handles the
// signal, re-raise it so the process still ends as it would have without this listener.
function onStopSignal(signal: NodeJS.Signals): void {
  const all = [...running];
  for (const r of all) r.stop(`was stopped because this process received ${signal}`);
  if (process.listenerCount(signal) === 1) {
    for (const r of all) r.kill();
    listen(false);
    process.kill(process.pid, signal);
  }
}
function onProcessExit(): void {
  for (const r of running) r.kill();
}
function listen(on: boolean): void {
  for (const s of STOP_SIGNALS) (on ? process.on : process.off).call(process, s, onStopSignal);
  (on ? process.on : process.off).call(process, "exit", onProcessExit);
}
function track(r: Running): () => void {
  if (!running.size) listen(true);
  running.add(r);
  return () => {
    if (running.delete(r) && !running.size) listen(false);
  };
}

/** Runs `command` to its end; rejects with {@link CommandError} unless it exits 0 in time. */
export function runCommand(command: string, options: RunOptions): Promise<void> {
  const log = options.log ?? consoleLog;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let stopReason: string | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  let pid: number | undefined;
  const handle: Running = {
    stop: (reason) => {
      const group = pid;
      if (stopReason || group === undefined) return;
      stopReason = reason;
      killGroup(group, "SIGTERM");
      killTimer = setTimeout(() => killGroup(group, "SIGKILL"), KILL_GRACE_MS);
    },
    kill: () => {
      if (pid !== undefined) killGroup(pid, "SIGKILL");
    },
  };
  // Listening before the command starts: a stop signal that came between the start and the
  // listener would end this process by the default action and leave the command running.
  const untrack = track(handle);
  // Its own process group (detached), so a timeout or stop reaches the harness's workers too,
  // not just the shell.
  const child = (() => {
    try {
      return spawn("/bin/sh", ["-c", command], {
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...options.env },
      });
    } catch (error) {
      untrack();
      throw error;
    }
  })();
  pid = child.pid;
  if (pid !== undefined) options.onSpawn?.(pid);
  const stderrTail: string[] = [];
  for (const stream of ["stdout", "stderr"] as const) {
    createInterface({ input: child[stream], crlfDelay: Infinity }).on("line", (line) => {
      const shown = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}...` : line;
      if (stream === "stderr") {
        stderrTail.push(shown);
        if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
      }
      log.info({ stream, command: options.label }, shown);
      options.onLine?.(line, stream);
    });
  }

  const timer = setTimeout(() => handle.stop(`ran past its timeout of ${timeoutMs} ms`), timeoutMs);

  return new Promise<void>((resolve, reject) => {
    const finish = (error?: Error) => {
      clearTimeout(timer);
      // After a stop the SIGKILL stays due: the harness's workers may outlive the shell.
      if (!stopReason) clearTimeout(killTimer);
      untrack();
      if (error) reject(error);
      else resolve();
    };
    child.once("error", (error) =>
      finish(new CommandError(`cannot run the ${options.label} command ${JSON.stringify(command)}: ${error.message}`, stderrTail, { cause: error })),
    );
    child.once("exit", (code, signal) => {
      // Whatever the shell left running in the background ends with it.
      if (pid !== undefined && !stopReason) killGroup(pid, "SIGTERM");
      // Wait for the last output lines, but not for a grandchild that keeps the pipes open.
      const grace = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 2_000);
      child.once("close", () => {
        clearTimeout(grace);
        const what = `the ${options.label} command ${JSON.stringify(command)}`;
        if (stopReason) finish(new CommandError(`${what} ${stopReason}`, stderrTail));
        else if (code !== 0) finish(new CommandError(`${what} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`, stderrTail));
        else finish();
      });
    });
  });
}
