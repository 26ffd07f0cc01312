/**
 * Evaluation by the user's own command (lmms-eval, VLMEvalKit, a script): the command runs
 * through `/bin/sh -c`, writes per-suite scores as JSON to the path in `$POP_SCORES`, and this
 * module reads them back as an {@link EvalResult}.
 *
 * The scores file is either `{"suites": {"name": number, ...}, "items": n?}` or a flat
 * `{"name": number, ...}` (every key a suite). A number in 0..1 is an accuracy; a number in
 * (1, 100] is a percentage and is divided by 100 (lmms-eval and VLMEvalKit report both ways).
 * So a suite scored 1% must be written as 0.01: written as 1 it reads as 100%.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { PopError } from "../../protocol/errors.ts";
import type { EvalResult, Evaluator } from "../backend/types.ts";

/** The command could not start, exited non-zero, was killed, or ran past its timeout. */
export class EvalCommandError extends PopError {
  /** The command's last stderr lines (up to {@link STDERR_TAIL}). */
  readonly stderrTail: string[];
  constructor(message: string, stderrTail: string[], options: { cause?: unknown } = {}) {
    const tail = stderrTail.length ? `\n--- last ${stderrTail.length} lines of stderr ---\n${stderrTail.join("\n")}` : "\n(no stderr output)";
    super(message + tail, options);
    this.stderrTail = stderrTail;
  }
}

/** The scores file is missing or does not hold per-suite scores; the message quotes what it held. */
export class ScoresFileError extends PopError {}

/** Where the command's output lines go (a pino logger fits). */
export interface CommandLog {
  info(fields: object, msg: string): void;
}

/** Options of {@link CommandEvaluator}. */
export interface CommandEvaluatorOptions {
  /** Path for `$POP_SCORES` (kept afterwards); default a file in a fresh temp folder, removed afterwards. */
  outFile?: string;
  /** Extra environment for the command (e.g. POP_PEER, POP_MODEL, POP_BASE_URL), on top of this process's. */
  env?: Record<string, string>;
  /** Kill the command after this long (default 24 h). */
  timeoutMs?: number;
  /** Receives each output line; default: the console. */
  log?: CommandLog;
}

/** Stderr lines kept for the error message. */
export const STDERR_TAIL = 20;
const DEFAULT_TIMEOUT_MS = 24 * 3600_000;
/** Time between SIGTERM and SIGKILL: lets an evaluation harness write its partial results and exit. */
const KILL_GRACE_MS = 5_000;
/** Longest output line passed to the log (progress bars can make very long ones). */
const MAX_LINE = 4_000;

const consoleLog: CommandLog = {
  info: (fields, msg) => ((fields as { stream?: string }).stream === "stderr" ? console.error(msg) : console.log(msg)),
};

/**
 * Per-suite accuracies (0..1) from the text of a scores file (format in this module's doc
 * comment). Throws {@link ScoresFileError} saying what the file held when it is not one.
 */
export function parseScores(text: string, file: string): { suites: Record<string, number>; items: number } {
  const held = () => `; it held ${JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}...` : text)}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ScoresFileError(`scores file ${file} is not valid JSON (${(error as Error).message})${held()}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(value)) throw new ScoresFileError(`scores file ${file} must hold a JSON object of suite scores${held()}`);
  const nested = "suites" in value;
  const source = nested ? value.suites : value;
  if (!isObject(source)) throw new ScoresFileError(`scores file ${file}: "suites" must be an object of suite scores${held()}`);
  const entries = Object.entries(source);
  if (!entries.length) throw new ScoresFileError(`scores file ${file} has no suite scores${held()}`);
  const bad: string[] = [];
  const suites: Record<string, number> = {};
  for (const [name, v] of entries) {
    if (typeof v !== "number" || !Number.isFinite(v)) bad.push(`${JSON.stringify(name)} is ${JSON.stringify(v)}, not a number`);
    else if (v < 0 || v > 100) bad.push(`${JSON.stringify(name)} is ${v}, outside 0..1 (accuracy) and (1, 100] (percent)`);
    else suites[name] = v <= 1 ? v : v / 100;
  }
  if (bad.length) throw new ScoresFileError(`scores file ${file}: ${bad.join("; ")}${held()}`);
  const items = nested && typeof value.items === "number" && Number.isInteger(value.items) && value.items >= 0 ? value.items : 0;
  return { suites, items };
}

/** Sends a signal to the whole process group (the shell and everything it started). */
function killGroup(pid: number, signal: NodeJS.Signals): void {
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

/**
 * An {@link Evaluator} that runs a shell command and reads the suite scores it writes to
 * `$POP_SCORES`. `items` in the result is the scores file's `items` when it gives one, else 0.
 */
export class CommandEvaluator implements Evaluator {
  constructor(
    readonly command: string,
    private readonly options: CommandEvaluatorOptions = {},
  ) {}

  async evaluate(): Promise<EvalResult> {
    const t0 = performance.now();
    const tempDir = this.options.outFile ? undefined : await mkdtemp(join(tmpdir(), "pop-eval-"));
    const scoresPath = this.options.outFile ?? join(tempDir!, "scores.json");
    try {
      if (this.options.outFile) {
        // A file left by an earlier run must not pass for this run's scores.
        await rm(scoresPath, { force: true });
        await mkdir(dirname(scoresPath), { recursive: true });
      }
      await this.run(scoresPath);
      let text: string;
      try {
        text = await readFile(scoresPath, "utf8");
      } catch (error) {
        throw new ScoresFileError(`the evaluation command exited 0 but did not write its scores to $POP_SCORES (${scoresPath}): ${(error as Error).message}`, { cause: error });
      }
      const { suites, items } = parseScores(text, scoresPath);
      const values = Object.values(suites);
      return { suites, average: values.reduce((a, b) => a + b, 0) / values.length, items, ms: performance.now() - t0 };
    } finally {
      if (tempDir) await rm(tempDir, { recursive: true, force: true });
    }
  }

  /** Runs the command to its end; rejects unless it exits 0 in time. */
  private run(scoresPath: string): Promise<void> {
    const log = this.options.log ?? consoleLog;
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // Its own process group (detached), so a timeout or stop reaches the harness's workers too,
    // not just the shell.
    const child = spawn("/bin/sh", ["-c", this.command], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...this.options.env, POP_SCORES: scoresPath },
    });
    const stderrTail: string[] = [];
    for (const stream of ["stdout", "stderr"] as const) {
      createInterface({ input: child[stream], crlfDelay: Infinity }).on("line", (line) => {
        const shown = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}...` : line;
        if (stream === "stderr") {
          stderrTail.push(shown);
          if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
        }
        log.info({ stream, command: "evaluation" }, shown);
      });
    }

    let stopReason: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const pid = child.pid;
    const handle: Running = {
      stop: (reason) => {
        if (stopReason || pid === undefined) return;
        stopReason = reason;
        killGroup(pid, "SIGTERM");
        killTimer = setTimeout(() => killGroup(pid, "SIGKILL"), KILL_GRACE_MS);
      },
      kill: () => {
        if (pid !== undefined) killGroup(pid, "SIGKILL");
      },
    };
    const untrack = track(handle);
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
      child.once("error", (error) => finish(new EvalCommandError(`cannot run the evaluation command ${JSON.stringify(this.command)}: ${error.message}`, stderrTail, { cause: error })));
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
          const what = `the evaluation command ${JSON.stringify(this.command)}`;
          if (stopReason) finish(new EvalCommandError(`${what} ${stopReason}`, stderrTail));
          else if (code !== 0) finish(new EvalCommandError(`${what} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`, stderrTail));
          else finish();
        });
      });
    });
  }
}
