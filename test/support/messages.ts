/**
 * Protocol messages for tests: one builder per message with sensible defaults, so a test writes
 * only the fields it is about and a schema change is mended here, once. Candidate ids follow the
 * protocol's `promptId:author:index` everywhere. Also one valid example of every message, for
 * round-trip and fuzz tests.
 */
import {
  DEFAULT_LIMITS,
  controlEvent,
  PROTOCOL_VERSION,
  type CandidateBatch,
  type ControlBody,
  type ControlEventName,
  type DeadLetter,
  type EvaluationResult,
  type IterationRecord,
  type LikertScores,
  type Member,
  type Message,
  type PhaseCost,
  type Usage,
  type MessageOf,
  type ModelRecord,
  type LeaseRecord,
  type PreferencePair,
  type Progress,
  type Prompt,
  type PromptPool,
  type Verdict,
  type VerdictScore,
} from "../../protocol/mod.ts";

const v = PROTOCOL_VERSION;
const EXPERIMENT = "exp1";
const PROMPT_ID = "p-1";
const hash = `sha256-${"ab".repeat(32)}`;

/** Five Likert scores: all `s`, or the given criteria over a base of 3. */
export function likert(s: number | Partial<LikertScores> = 3): LikertScores {
  const all = (x: number) => ({ helpfulness: x, correctness: x, coherence: x, complexity: x, verbosity: x });
  return typeof s === "number" ? all(s) : { ...all(3), ...s };
}

/** The id of `author`'s `index`-th candidate for `promptId`. */
export const candidateId = (promptId: string, author: string, index: number) => `${promptId}:${author}:${index}`;

export function prompt(o: Partial<Prompt> = {}): Prompt {
  return { v, type: "prompt", experiment: EXPERIMENT, iteration: 1, promptId: PROMPT_ID, question: "q", images: [], createdAt: 1, ...o };
}

/** `author`'s batch for a prompt: one candidate per text (default one, "red"). */
export function candidates(o: Partial<CandidateBatch> & { texts?: string[] } = {}): CandidateBatch {
  const { texts = ["red"], ...rest } = o;
  const promptId = o.promptId ?? PROMPT_ID;
  const author = o.author ?? "alice";
  return {
    v,
    type: "candidates",
    experiment: EXPERIMENT,
    iteration: 1,
    promptId,
    question: "q",
    images: [],
    author,
    modelVersion: "m1",
    sampling: { k: texts.length, temperature: 1, seed: 1 },
    candidates: texts.map((text, i) => ({ candidateId: candidateId(promptId, author, i), text })),
    createdAt: 1,
    ...rest,
  };
}

/**
 * `judge`'s verdict on a prompt. `scored` gives each author's candidates their scores in order (a
 * number is all five criteria); the authors are its keys, sorted. Default: alice's one candidate, all 3.
 */
export function verdict(o: Partial<Verdict> & { scored?: Record<string, (number | LikertScores)[]> } = {}): Verdict {
  const { scored = { alice: [3] }, ...rest } = o;
  const promptId = o.promptId ?? PROMPT_ID;
  const authors = Object.keys(scored).sort();
  const scores: VerdictScore[] = authors.flatMap((a) =>
    scored[a]!.map((s, i) => ({ candidateId: candidateId(promptId, a, i), likert: typeof s === "number" ? likert(s) : s })),
  );
  return { v, type: "verdict", experiment: EXPERIMENT, iteration: 1, promptId, judge: "bob", authors, modelVersion: "m1", scores, createdAt: 2, ...rest };
}

export function pair(o: Partial<PreferencePair> = {}): PreferencePair {
  const promptId = o.promptId ?? PROMPT_ID;
  const experiment = o.experiment ?? EXPERIMENT;
  const iteration = o.iteration ?? 1;
  return {
    v,
    type: "pair",
    experiment,
    iteration,
    pairId: `${experiment}:${iteration}:${promptId}`,
    promptId,
    question: "q",
    images: [],
    chosen: { candidateId: candidateId(promptId, "alice", 0), author: "alice", text: "red", score: 1 },
    rejected: { candidateId: candidateId(promptId, "bob", 0), author: "bob", text: "x", score: 0 },
    margin: 1,
    judges: ["carol"],
    createdAt: 3,
    ...o,
  };
}

/** A control event; `at` defaults to 1 (not now: tests compare messages). */
export function control<E extends ControlEventName>(event: E, body: ControlBody<E>, experiment = EXPERIMENT): MessageOf<"control"> & { event: E } {
  return controlEvent(experiment, event, { at: 1, ...body });
}

export function evaluation(o: Partial<EvaluationResult> = {}): EvaluationResult {
  return {
    v,
    type: "evaluation",
    experiment: EXPERIMENT,
    iteration: 0,
    peer: "alice",
    modelVersion: "m1",
    suites: { colour: 0.5, ocr: 0.25 },
    average: 0.375,
    items: 400,
    at: 1,
    ...o,
  };
}

export function member(o: Partial<Member> = {}): Member {
  return {
    v,
    type: "member",
    experiment: EXPERIMENT,
    peer: "alice",
    instance: "host-1",
    backend: "tiny",
    modelVersion: "m1",
    host: "h",
    pid: 42,
    joinedAt: 1,
    heartbeatAt: 1,
    state: "active",
    ...o,
  };
}

/** A usage: `requests` requests with 10 prompt and 3 generated tokens and 0.5 s each. */
export function usage(requests = 1, o: Partial<Usage> = {}): Usage {
  return { requests, promptTokens: 10 * requests, completionTokens: 3 * requests, seconds: 0.5 * requests, ...o };
}

/** A phase cost: `requests` answer requests and as many judge requests unless given. */
export function phaseCost(requests = 2, o: PhaseCost = {}): PhaseCost {
  return { answer: usage(requests), judge: usage(requests), ...o };
}

/** A training_done event of `peer` for `iteration`, with its cost. */
export function trainingDone(iteration: number, peer: string, cost?: PhaseCost, experiment = EXPERIMENT) {
  return control("training_done", { iteration, peer, modelVersion: "m3", result: train, ...(cost ? { cost } : {}), at: 8 }, experiment);
}

export function deadLetter(o: Partial<DeadLetter> = {}): DeadLetter {
  return {
    v,
    type: "dead_letter",
    experiment: EXPERIMENT,
    reason: "malformed",
    detail: "not msgpack",
    subject: "pop.exp1.cand.1.alice",
    stream: "POP_CANDIDATES",
    streamSeq: 1,
    deliveries: 1,
    consumer: "c",
    headers: {},
    payload: new Uint8Array(),
    payloadBytes: 0,
    at: 1,
    ...o,
  };
}

export function iterationRecord(o: Partial<IterationRecord> = {}): IterationRecord {
  return {
    v,
    type: "iteration",
    experiment: EXPERIMENT,
    iteration: 1,
    peers: ["alice", "bob"],
    prompts: { pool: "pool-1", offset: 0, count: 1 },
    openedAt: 1,
    ...o,
  };
}

export function progress(o: Partial<Progress> = {}): Progress {
  return { v, type: "progress", experiment: EXPERIMENT, iteration: 1, phase: "collecting", at: 1, ...o } as Progress;
}

export function modelRecord(o: Partial<ModelRecord> = {}): ModelRecord {
  return { v, type: "model", experiment: EXPERIMENT, peer: "alice", iteration: 1, modelVersion: "m1", object: "model/exp1/alice/m1", bytes: 10, at: 1, ...o };
}

export function leaseRecord(o: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    v,
    type: "lease",
    experiment: EXPERIMENT,
    instance: "coord-a",
    token: 2,
    since: 1,
    renewedAt: 2,
    released: false,
    fences: [
      { token: 1, instance: "coord-b", since: 0, after: { POP_PAIRS: 0 } },
      { token: 2, instance: "coord-a", since: 1, after: { POP_PAIRS: 7 } },
    ],
    ...o,
  };
}

export function promptPool(o: Partial<PromptPool> = {}): PromptPool {
  return {
    v,
    type: "pool",
    experiment: EXPERIMENT,
    name: "world-7",
    prompts: [{ promptId: PROMPT_ID, question: "q", images: [{ hash, format: "rgb8", width: 32, height: 32 }] }],
    ...o,
  };
}

const train = { steps: 10, pairs: 64, lossFirst: 0.9, lossLast: 0.4, marginBefore: -0.1, marginAfter: 0.8, ms: 1234 };

/** One valid example of every protocol message, for round-trip and fuzz tests. */
export function sampleMessages(): Message[] {
  return [
    {
      v,
      type: "experiment",
      experiment: EXPERIMENT,
      createdAt: 1,
      iterations: 3,
      promptsPerIteration: 128,
      openPrompts: 64,
      pool: { name: "world-7", offset: 0 },
      minPeers: 3,
      minPeersToContinue: 2,
      sampling: { k: 4, temperature: 1, maxTokens: 8 },
      voting: { minChosen: 0.85, minMargin: 0.75, selfJudging: false, pairing: "pooled", combine: "mean", minJudges: 1, aggregate: "mean" },
      judging: { judgesPerAuthor: 2, mode: "per-criterion" },
      training: { beta: 2, gamma: 1, learningRate: 0.001, learningRateDecay: 0.5, epochs: 1, batchSize: 32, sftWeight: 0, pairsFor: "same" },
      deadlines: { voteMs: 1000, trainMs: 5000, trainQuorum: 1, judgeLingerMs: 2000 },
      heartbeat: { intervalMs: 1000, lapseMs: 5000 },
      limits: DEFAULT_LIMITS,
      coordination: { leaseMs: 3000 },
    },
    prompt({ question: "what colour is the circle ?", images: [{ hash, format: "rgb8", width: 32, height: 32 }], createdAt: 2 }),
    candidates({ question: "what colour is the circle ?", texts: ["red", "blue"], sampling: { k: 2, temperature: 1, seed: 7 }, createdAt: 3 }),
    verdict({ scored: { alice: [{ helpfulness: 4.5, correctness: 5, coherence: 3.25, complexity: 2, verbosity: 1 }] }, modelVersion: "m2", createdAt: 4 }),
    pair({
      images: [{ hash, format: "png", width: 2, height: 3 }],
      chosen: { candidateId: "c1", author: "alice", text: "red", score: 0.95 },
      rejected: { candidateId: "c2", author: "bob", text: "two", score: 0.1 },
      margin: 0.85,
      judges: ["bob", "carol"],
      createdAt: 5,
    }),
    control("iteration_opened", { iteration: 1, peers: ["alice", "bob"], prompts: 128, at: 6 }),
    control("iteration_closed", { iteration: 1, pairs: 40, voted: 128, at: 7 }),
    control("training_done", {
      iteration: 1,
      peer: "alice",
      modelVersion: "m3",
      result: train,
      cost: phaseCost(2, { train: usage(1, { modelSeconds: 0.4 }) }),
      at: 8,
    }),
    control("model_published", { iteration: 1, peer: "alice", modelVersion: "m3", object: "model/exp1/alice/m3", bytes: 1000, at: 9 }),
    control("peer_joined", { peer: "dave", instance: "host-1", at: 10 }),
    control("peer_left", { peer: "dave", instance: "host-1", reason: "lapsed", at: 11 }),
    control("experiment_done", { iterations: 3, at: 12 }),
    evaluation({ at: 13 }),
    deadLetter({ streamSeq: 9, headers: { "Pop-Type": ["candidates"] }, payload: new Uint8Array([1, 2, 3]), payloadBytes: 3, at: 14 }),
    member({ joinedAt: 15, heartbeatAt: 16, cost: { total: phaseCost(3), iterations: [{ iteration: 1, phases: phaseCost(3) }] } }),
  ];
}

/** Stored records (KV values and pool objects) that go through the same codec. */
export function sampleRecords(): Message[] {
  return [
    iterationRecord({ prompts: { pool: "pool-1", offset: 4, count: 200_000 } }),
    progress({ phase: "training", at: 2 }),
    modelRecord({ modelVersion: "m3", object: "model/exp1/alice/m3", at: 3 }),
    promptPool(),
    leaseRecord(),
  ];
}
