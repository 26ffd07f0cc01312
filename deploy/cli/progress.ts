/**
 * Progress of long work for people watching a command: done of total, rate and time to go. On a
 * terminal a bar redrawn in place; in a file or pipe a plain line now and then, so logs stay
 * readable. Used by pretraining, `pop pool`, `pop train` and benchmark evaluation.
 */

/** Where a progress reporter writes: a terminal or a file (stderr by default). */
export interface ProgressOutput {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressOptions {
  /** What is counted, e.g. "steps" or "prompts". */
  unit?: string;
  out?: ProgressOutput;
  /** Plain lines (not a terminal): at most one per this many ms (the last always). Default 10 s. */
  everyMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

const BAR = 24;

/** `[#####.....]`: `done` of `total` in `width` cells. */
export function progressBar(done: number, total: number, width = BAR): string {
  const filled = total > 0 ? Math.max(0, Math.min(width, Math.round((done / total) * width))) : 0;
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

/** "about 1 min 05 s to go" for `leftMs`. */
export const timeToGo = (leftMs: number) => `about ${formatDuration(leftMs)} to go`;

/** "1 min 05 s", "12 s", "2 h 03 min". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/**
 * One progress line: `label [#####.....] 120/400 steps  3.1/s  about 1 min 30 s to go  extra`.
 * The rate and time to go appear once something is done.
 */
export function progressLine(
  label: string,
  done: number,
  total: number,
  elapsedMs: number,
  opts: { unit?: string; bar?: boolean; extra?: string } = {},
): string {
  const parts = [label];
  if (opts.bar && total > 0) parts.push(progressBar(done, total));
  parts.push(`${done}/${total}${opts.unit ? ` ${opts.unit}` : ""}`);
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  if (done > 0 && rate > 0) {
    parts.push(`${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)}/s`);
    parts.push(done >= total ? `done in ${formatDuration(elapsedMs)}` : timeToGo(((total - done) / rate) * 1000));
  }
  if (opts.extra) parts.push(opts.extra);
  return parts.join("  ");
}

/** Reports one piece of long work; call {@link update} as it goes and {@link finish} at the end. */
export class ProgressReporter {
  private readonly out: ProgressOutput;
  private readonly now: () => number;
  private readonly started: number;
  private lastAt = -Infinity;
  private drawn = false;

  constructor(
    private readonly label: string,
    private total: number,
    private readonly opts: ProgressOptions = {},
  ) {
    this.out = opts.out ?? process.stderr;
    this.now = opts.now ?? Date.now;
    this.started = this.now();
  }

  update(done: number, extra?: string, total = this.total): void {
    this.total = total;
    const t = this.now();
    const tty = Boolean(this.out.isTTY);
    // A terminal is redrawn at most ten times a second; a log gets a line every `everyMs`.
    if (t - this.lastAt < (tty ? 100 : (this.opts.everyMs ?? 10_000)) && done < this.total) return;
    this.lastAt = t;
    const line = progressLine(this.label, done, this.total, t - this.started, { unit: this.opts.unit, bar: tty, extra });
    if (tty) {
      this.out.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else {
      this.out.write(`${line}\n`);
    }
  }

  /** Ends the bar's line on a terminal (after the final update). */
  finish(): void {
    if (this.drawn) this.out.write("\n");
    this.drawn = false;
  }
}
