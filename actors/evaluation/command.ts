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
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PopError } from "../../protocol/errors.ts";
import type { EvalResult, Evaluator } from "../models/contract.ts";
import { runCommand, type CommandLog } from "../process/command.ts";

/** The evaluation command could not start, exited non-zero, was killed, or ran past its timeout. */
export { CommandError as EvalCommandError, STDERR_TAIL } from "../process/command.ts";

/** The scores file is missing or does not hold per-suite scores; the message quotes what it held. */
export class ScoresFileError extends PopError {}

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
      await runCommand(this.command, {
        label: "evaluation",
        env: { ...this.options.env, POP_SCORES: scoresPath },
        timeoutMs: this.options.timeoutMs,
        log: this.options.log,
      });
      let text: string;
      try {
        text = await readFile(scoresPath, "utf8");
      } catch (error) {
        throw new ScoresFileError(`the evaluation command exited 0 but did not write its scores to $POP_SCORES (${scoresPath}): ${(error as Error).message}`, {
          cause: error,
        });
      }
      const { suites, items } = parseScores(text, scoresPath);
      const values = Object.values(suites);
      return { suites, average: values.reduce((a, b) => a + b, 0) / values.length, items, ms: performance.now() - t0 };
    } finally {
      if (tempDir) await rm(tempDir, { recursive: true, force: true });
    }
  }
}
