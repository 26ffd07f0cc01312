/**
 * The collector against a real server: a vote's pairs are published without holding up the
 * messages behind it, and the iteration is complete only once they are stored, so the close
 * (and the members' training, which reads the pairs then) never comes before a pair.
 */
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { IterationCollector } from "../../coordinator/collector.ts";
import { experimentConfig } from "../../deploy/ops/experiment.ts";
import {
  PROTOCOL_VERSION, STREAMS, ensureTopology, readStored, subjects,
  type CandidateBatch, type IterationRecord, type LikertScores, type Prompt, type Verdict,
} from "../../protocol/mod.ts";
import { VOTE_EVERY_PROMPT } from "../e2e/panel.ts";
import { cleanup, connectTo, eventually, startServer } from "../support/nats.ts";

const EXP = "collect";
const v = PROTOCOL_VERSION;
const members = ["ann", "ben", "cat"];
const all = (s: number): LikertScores => ({ helpfulness: s, correctness: s, coherence: s, complexity: s, verbosity: s });

describe("the iteration collector", () => {
  afterAll(cleanup);

  it("is complete only once every vote's pairs are stored", async () => {
    const server = await startServer();
    const nc = await connectTo(server.url);
    await ensureTopology(nc);
    const config = experimentConfig({ experiment: EXP, iterations: 1, promptsPerIteration: 3, k: 2, temperature: 1, poolSeed: 1, minPeers: 3 }, { voting: VOTE_EVERY_PROMPT });
    const prompts: Prompt[] = ["q0", "q1", "q2"].map((id) => ({ v, type: "prompt", experiment: EXP, iteration: 1, promptId: `collect-prompt-${id}`, question: "what colour ?", images: [], createdAt: 1 }));
    const record: IterationRecord = { v, type: "iteration", experiment: EXP, iteration: 1, peers: members, promptIds: prompts.map((p) => p.promptId), openedAt: 1 };
    let changes = 0;
    const collector = new IterationCollector(nc, config, record, prompts, () => new Set(members), pino({ level: "silent" }), () => changes++);
    await collector.start();

    for (const p of prompts) {
      for (const author of members) {
        const batch: CandidateBatch = {
          v, type: "candidates", experiment: EXP, iteration: 1, promptId: p.promptId, question: p.question, images: [], author, modelVersion: "m",
          sampling: { k: 2, temperature: 1, seed: 1 }, candidates: [0, 1].map((i) => ({ candidateId: `${p.promptId}:${author}:${i}`, text: `${author} answer ${i}` })), createdAt: 1,
        };
        await collector.accept(batch);
      }
      for (const judge of members) {
        const authors = members.filter((a) => a !== judge);
        const verdict: Verdict = {
          v, type: "verdict", experiment: EXP, iteration: 1, promptId: p.promptId, judge, authors, modelVersion: "m",
          scores: authors.flatMap((a) => [0, 1].map((i) => ({ candidateId: `${p.promptId}:${a}:${i}`, likert: all(i ? 1 : 5) }))), createdAt: 1,
        };
        await collector.accept(verdict);
      }
    }
    // Every prompt is voted, but the pairs' acknowledgements cannot have come back yet.
    expect(collector.status.voted).toBe(3);
    expect(collector.complete).toBe(false);
    await eventually(() => collector.complete, 10_000, "the pairs to be acknowledged");
    const stored = (await readStored(nc, STREAMS.pairs.name, subjects.pair(EXP, 1), "pair")).messages;
    expect(stored.map((p) => p.promptId).sort()).toEqual(prompts.map((p) => p.promptId).sort());
    expect(collector.status.pairs).toBe(3);
    expect(changes).toBeGreaterThanOrEqual(3);
  }, 30_000);
});
