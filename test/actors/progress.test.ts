import { describe, expect, it } from "vitest";
import { formatDuration, progressLine, ProgressReporter } from "../../deploy/cli/progress.ts";

describe("progress of long work", () => {
  it("says done of total, the rate and the time to go", () => {
    expect(progressLine("pretraining", 0, 400, 0, { unit: "steps" })).toBe("pretraining  0/400 steps");
    expect(progressLine("pretraining", 100, 400, 20_000, { unit: "steps", extra: "loss 1.234" })).toBe(
      "pretraining  100/400 steps  5.0/s  about 1 min 00 s to go  loss 1.234",
    );
    expect(progressLine("pool", 50, 100, 1000, { bar: true })).toBe("pool  [############............]  50/100  50/s  about 1 s to go");
    expect(progressLine("pool", 100, 100, 4000)).toBe("pool  100/100  25/s  done in 4 s");
    expect(formatDuration(3_725_000)).toBe("1 h 02 min");
  });

  it("redraws a bar in place on a terminal and writes a line now and then elsewhere", () => {
    let t = 0;
    const written: string[] = [];
    const file = new ProgressReporter("x", 10, { out: { isTTY: false, write: (s: string) => written.push(s) }, now: () => t, everyMs: 5000 });
    for (let i = 1; i <= 10; i++) {
      t += 1000;
      file.update(i);
    }
    file.finish();
    // the first, one 5 s later, and the last
    expect(written).toEqual(["x  1/10  1.0/s  about 9 s to go\n", "x  6/10  1.0/s  about 4 s to go\n", "x  10/10  1.0/s  done in 10 s\n"]);

    const tty: string[] = [];
    t = 0;
    const term = new ProgressReporter("y", 2, { out: { isTTY: true, write: (s: string) => tty.push(s) }, now: () => t });
    t = 1000;
    term.update(1);
    t = 2000;
    term.update(2);
    term.finish();
    expect(tty).toEqual([
      "\r\x1b[2Ky  [############............]  1/2  1.0/s  about 1 s to go",
      "\r\x1b[2Ky  [########################]  2/2  1.0/s  done in 2 s",
      "\n",
    ]);
  });
});
