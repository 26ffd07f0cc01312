/**
 * Results files: each measuring script (npm run demo, demo:seeds, bench, bench:hostile, chaos)
 * writes what it measured as markdown under docs/results/, with a header saying which commit ran
 * on which machine under what load, so the README can link to figures instead of copying them.
 * A run writes <script>-<date>.md and overwrites <script>-latest.md with the same text (a copy,
 * not a link, so it survives a clone or a zip).
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { commitOf, loadNow, machineLine, type Load } from "./run-facts.ts";

/** The repository's root: results and the commit are the checkout's, wherever the script was started from. */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Where results go unless told otherwise. */
export const DEFAULT_RESULTS_DIR = join(ROOT, "docs", "results");

/** The value of --results (or POP_RESULTS) that writes no results file: what the tests use. */
export const NO_RESULTS = "none";

/**
 * The results directory: the option, else $POP_RESULTS, else docs/results of this checkout;
 * undefined when either says "none" (the test suite sets POP_RESULTS=none, so test runs of the
 * demo never add files to the repository).
 */
export function resultsDir(option?: string): string | undefined {
  const chosen = option ?? process.env.POP_RESULTS ?? DEFAULT_RESULTS_DIR;
  return chosen === NO_RESULTS || chosen === "" ? undefined : resolve(chosen);
}

/** One part of a results file below its header. */
export interface ResultSection {
  heading: string;
  /** Markdown; wrap fixed-width tables with `fence`. */
  markdown: string;
}

/** What a script records at its end. */
export interface ResultBody {
  /** One line under the title: what was measured. */
  summary?: string;
  /** The run's settings, one list item each. */
  settings?: Record<string, string | number | boolean>;
  sections: ResultSection[];
}

/** How a run was started, for the header: `npm run demo -- --k 2`. */
export function commandLine(npmScript: string, args: readonly string[]): string {
  return args.length ? `npm run ${npmScript} -- ${args.join(" ")}` : `npm run ${npmScript}`;
}

/** A fenced block for a plain-text table (keeps its columns in markdown). */
export function fence(text: string): string {
  return "```\n" + text.replace(/\n+$/, "") + "\n```";
}

/**
 * A measuring run's results file, started when the run starts (the date and the load at start are
 * taken here) and written at its end with `write`.
 */
export class ResultsRun {
  private readonly started = new Date();
  private readonly loadAtStart: Load = loadNow();
  private readonly machine = machineLine();
  private readonly dir: string | undefined;

  /**
   * @param script the file name's stem: demo, demo-seeds, bench, bench-hostile, chaos
   * @param command how it was started, as the header shows it (e.g. "npm run demo -- --k 2")
   * @param dir --results as given; undefined: $POP_RESULTS or docs/results
   */
  constructor(
    readonly script: string,
    readonly command: string,
    dir?: string,
  ) {
    this.dir = resultsDir(dir);
  }

  /** Whether this run writes a file at all (not with --results none). */
  get enabled(): boolean {
    return this.dir !== undefined;
  }

  /**
   * Writes <dir>/<script>-<date>.md and copies it over <dir>/<script>-latest.md; returns the dated
   * file's path. The results file is a by-product of a run whose figures were already printed, so
   * a failure to write it is said on stderr and does not fail the run.
   */
  write(body: ResultBody): string | undefined {
    if (!this.dir) return undefined;
    try {
      mkdirSync(this.dir, { recursive: true });
      const file = this.freeName(this.dir);
      writeFileSync(file, this.render(body));
      copyFileSync(file, join(this.dir, `${this.script}-latest.md`));
      const shown = relative(process.cwd(), file);
      process.stderr.write(`results: ${shown.startsWith("..") ? file : shown} (and ${this.script}-latest.md)\n`);
      return file;
    } catch (error) {
      process.stderr.write(`results: could not write to ${this.dir}: ${(error as Error).message}\n`);
      return undefined;
    }
  }

  /** The markdown text of the file. */
  render(body: ResultBody): string {
    const ended = new Date();
    const end = loadNow();
    const seconds = (ended.getTime() - this.started.getTime()) / 1000;
    const load = (l: Load) => `${l.one.toFixed(2)} / ${l.five.toFixed(2)}`;
    const lines = [
      `# ${this.script}: ${iso(this.started)}`,
      "",
      ...(body.summary ? [body.summary, ""] : []),
      "| | |",
      "|---|---|",
      `| command | \`${this.command}\` |`,
      `| commit | ${commitOf(ROOT)} |`,
      `| started | ${iso(this.started)} |`,
      `| run time | ${seconds < 120 ? `${seconds.toFixed(0)} s` : `${(seconds / 60).toFixed(1)} min`} |`,
      `| machine | ${this.machine} |`,
      `| load (1 min / 5 min) | at start ${load(this.loadAtStart)}, at end ${load(end)} |`,
      "",
    ];
    if (body.settings && Object.keys(body.settings).length > 0) {
      lines.push("## Settings", "", ...Object.entries(body.settings).map(([k, v]) => `- ${k}: ${v}`), "");
    }
    for (const s of body.sections) lines.push(`## ${s.heading}`, "", s.markdown.replace(/\n+$/, ""), "");
    return lines.join("\n");
  }

  /** <script>-2026-12-07T1530Z.md, or with seconds when a run of the same minute took that name. */
  private freeName(dir: string): string {
    const stamp = iso(this.started).replace(/[-:]/g, "");
    const minute = join(dir, `${this.script}-${iso(this.started).slice(0, 10)}T${stamp.slice(9, 13)}Z.md`);
    return existsSync(minute) ? join(dir, `${this.script}-${iso(this.started).slice(0, 10)}T${stamp.slice(9, 15)}Z.md`) : minute;
  }
}

/** 2026-12-07T15:30:12Z: ISO 8601 to the second. */
function iso(d: Date): string {
  return d.toISOString().slice(0, 19) + "Z";
}
