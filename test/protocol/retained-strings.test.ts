import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Run in a process of its own, with the coordinator's and the actor's modules loaded (so that any
 * of them pulling in a decoder that hands out slices would count), under --expose-gc.
 */
const probe = `
import { decode, encode, PROTOCOL_VERSION } from "./protocol/mod.ts";
await import("./coordinator/coordinator.ts");
await import("./actors/actor.ts");
// Many short strings, as in a large verdict: a decoder may join them into one string and slice it
// (V8 makes a slice for 13 characters or more, so the ids are that long, as real ones are).
const authors = Array.from({ length: 16 }, (_, a) => "author" + String(a).padStart(2, "0"));
const bytes = Array.from({ length: 1000 }, (_, i) => encode({
  v: PROTOCOL_VERSION, type: "verdict", experiment: "e", iteration: 1, promptId: "pool-prompt-" + String(i).padStart(5, "0"), judge: "judge", authors, modelVersion: "m1",
  scores: authors.flatMap((a) => Array.from({ length: 8 }, (_, j) => ({ candidateId: "pool-prompt-" + String(i).padStart(5, "0") + ":" + a + ":" + j, likert: { helpfulness: 1, correctness: 2, coherence: 3, complexity: 4, verbosity: 5 } }))),
  createdAt: 1,
}));
const heap = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().heapUsed; };
const before = heap();
const kept = bytes.map((b) => decode(b, "verdict").promptId);
console.log(JSON.stringify({ grewMb: (heap() - before) / 2 ** 20, kept: kept.length, messagesMb: bytes.reduce((a, b) => a + b.length, 0) / 2 ** 20 }));
`;

describe("decoded messages", () => {
  it("a string kept from a decoded message does not keep the message alive", () => {
    const out = execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", probe], { cwd: root, encoding: "utf8" });
    const r = JSON.parse(out.trim().split("\n").pop()!) as { grewMb: number; kept: number; messagesMb: number };
    expect(r.kept).toBe(1000);
    expect(r.messagesMb).toBeGreaterThan(5);
    // 1000 short ids (about 0.1 MB); slices of one string per message would hold most of each message.
    expect(r.grewMb).toBeLessThan(1);
  }, 60_000);
});
