/** One valid example of every protocol message, for round-trip and fuzz tests. */
import { PROTOCOL_VERSION, type Message } from "../../protocol/mod.ts";

const v = PROTOCOL_VERSION;
const experiment = "exp1";
const hash = `sha256-${"ab".repeat(32)}`;
const likert = { helpfulness: 4.5, correctness: 5, coherence: 3.25, complexity: 2, verbosity: 1 };
const train = { steps: 10, pairs: 64, lossFirst: 0.9, lossLast: 0.4, marginBefore: -0.1, marginAfter: 0.8, ms: 1234 };

export function sampleMessages(): Message[] {
  return [
    {
      v, type: "experiment", experiment, createdAt: 1, iterations: 3, promptsPerIteration: 128, openPrompts: 64, pool: { name: "world-7", offset: 0 }, minPeers: 3, minPeersToContinue: 2,
      sampling: { k: 4, temperature: 1, maxTokens: 8 },
      voting: { minChosen: 0.85, minMargin: 0.75, selfJudging: false, pairing: "pooled", combine: "mean", minJudges: 1, aggregate: "mean" },
      training: { beta: 2, gamma: 1, learningRate: 0.001, learningRateDecay: 0.5, epochs: 1, batchSize: 32, sftWeight: 0, pairsFor: "same" },
      deadlines: { voteMs: 1000, trainMs: 5000, trainQuorum: 1, judgeLingerMs: 2000 }, heartbeat: { intervalMs: 1000, lapseMs: 5000 },
    },
    { v, type: "prompt", experiment, iteration: 1, promptId: "p-1", question: "what colour is the circle ?", images: [{ hash, format: "rgb8", width: 32, height: 32 }], createdAt: 2 },
    {
      v, type: "candidates", experiment, iteration: 1, promptId: "p-1", question: "what colour is the circle ?", images: [], author: "alice", modelVersion: "m1", sampling: { k: 2, temperature: 1, seed: 7 },
      candidates: [{ candidateId: "p-1:alice:0", text: "red" }, { candidateId: "p-1:alice:1", text: "blue" }], createdAt: 3,
    },
    { v, type: "verdict", experiment, iteration: 1, promptId: "p-1", judge: "bob", authors: ["alice"], modelVersion: "m2", scores: [{ candidateId: "p-1:alice:0", likert }], createdAt: 4 },
    {
      v, type: "pair", experiment, iteration: 1, pairId: "exp1:1:p-1", promptId: "p-1", question: "q", images: [{ hash, format: "png", width: 2, height: 3 }],
      chosen: { candidateId: "c1", author: "alice", text: "red", score: 0.95 }, rejected: { candidateId: "c2", author: "bob", text: "two", score: 0.1 },
      margin: 0.85, judges: ["bob", "carol"], createdAt: 5,
    },
    { v, type: "control", experiment, event: "iteration_opened", iteration: 1, peers: ["alice", "bob"], prompts: 128, at: 6 },
    { v, type: "control", experiment, event: "iteration_closed", iteration: 1, pairs: 40, voted: 128, at: 7 },
    { v, type: "control", experiment, event: "training_done", iteration: 1, peer: "alice", modelVersion: "m3", result: train, at: 8 },
    { v, type: "control", experiment, event: "model_published", iteration: 1, peer: "alice", modelVersion: "m3", object: "model/exp1/alice/m3", bytes: 1000, at: 9 },
    { v, type: "control", experiment, event: "peer_joined", peer: "dave", instance: "host-1", at: 10 },
    { v, type: "control", experiment, event: "peer_left", peer: "dave", instance: "host-1", reason: "lapsed", at: 11 },
    { v, type: "control", experiment, event: "experiment_done", iterations: 3, at: 12 },
    { v, type: "evaluation", experiment, iteration: 0, peer: "alice", modelVersion: "m1", suites: { colour: 0.5, ocr: 0.25 }, average: 0.375, items: 400, at: 13 },
    {
      v, type: "dead_letter", experiment, reason: "malformed", detail: "not msgpack", subject: "pop.exp1.cand.1.alice", stream: "POP_CANDIDATES", streamSeq: 9,
      deliveries: 1, consumer: "c", headers: { "Pop-Type": ["candidates"] }, payload: new Uint8Array([1, 2, 3]), payloadBytes: 3, at: 14,
    },
    { v, type: "member", experiment, peer: "alice", instance: "host-1", backend: "tiny", modelVersion: "m1", host: "h", pid: 42, joinedAt: 15, heartbeatAt: 16, state: "active" },
  ];
}

/** Stored records (KV values and pool objects) that go through the same codec. */
export function sampleRecords(): Message[] {
  return [
    { v, type: "iteration", experiment, iteration: 1, peers: ["alice", "bob"], promptIds: ["p-1"], openedAt: 1 },
    { v, type: "progress", experiment, iteration: 1, phase: "training", at: 2 },
    { v, type: "model", experiment, peer: "alice", iteration: 1, modelVersion: "m3", object: "model/exp1/alice/m3", bytes: 10, at: 3 },
    { v, type: "pool", experiment, name: "world-7", prompts: [{ promptId: "p-1", question: "q", images: [{ hash, format: "rgb8", width: 32, height: 32 }] }] },
  ];
}
