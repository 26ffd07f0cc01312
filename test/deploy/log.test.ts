import { describe, expect, it } from "vitest";
import { createLogger } from "../../deploy/cli/log.ts";

describe("logs", () => {
  it("carry experiment, peer, instance and the current iteration on every line, as JSON or pretty lines with dates", () => {
    let iteration: number | undefined;
    const json: string[] = [];
    const log = createLogger("alice", {
      format: "json",
      context: { experiment: "demo", peer: "alice", instance: "lab1-42" },
      iteration: () => iteration,
      out: { write: (l: string) => json.push(l) },
    });
    log.info("joined");
    iteration = 2;
    log.info({ steps: 12 }, "trained");
    log.info({ iteration: 1 }, "late evaluation"); // a line's own iteration wins
    const recs = json.map((l) => JSON.parse(l));
    expect(recs[0]).toMatchObject({ experiment: "demo", peer: "alice", instance: "lab1-42", msg: "joined" });
    expect(recs[0]).not.toHaveProperty("iteration");
    expect(recs[1]).toMatchObject({ experiment: "demo", peer: "alice", instance: "lab1-42", iteration: 2, steps: 12, msg: "trained" });
    expect(recs[2]).toMatchObject({ iteration: 1 });

    const pretty: string[] = [];
    const p = createLogger("coordinator", {
      format: "pretty",
      context: { experiment: "demo" },
      iteration: () => 3,
      out: { write: (l: string) => pretty.push(l) },
    });
    p.warn({ pairs: 5, why: "two words" }, "voted");
    expect(pretty[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} WARN  demo it=3 +voted  pairs=5 why="two words"\n$/);
  });
});
