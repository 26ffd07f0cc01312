import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { unknownConfigKeys } from "../../deploy/ops/experiment.ts";

describe("experiment config files", () => {
  it("name every key the schema does not know, nested ones by their path", () => {
    for (const f of ["deploy/ops/experiment.example.json", "deploy/ops/experiment.served.example.json"]) {
      expect(unknownConfigKeys(JSON.parse(readFileSync(f, "utf8")))).toEqual([]);
    }
    expect(
      unknownConfigKeys({ iterations: 3, trainig: {}, training: { learningrate: 1e-3, beta: 2 }, pool: { name: "x", ofset: 1 }, deadlines: { voteMs: 1 } }),
    ).toEqual(["trainig", "training.learningrate", "pool.ofset"]);
  });
});
