/**
 * The process backend's wire: newline-delimited JSON over a peer program's stdin and stdout, one
 * message a line (docs/process-peer.md). The program speaks first with a {@link Hello}; the actor
 * then sends {@link PeerRequest}s with ids, and the program answers each with a result or an error
 * of the same id, sending {@link PeerProgress} lines for it while it works. Keys are snake_case so
 * a Python peer reads them as written; criteria are the protocol's. Every schema here is
 * published as JSON Schema (deploy/ops/schemas/), so a peer in any language can be checked
 * against it.
 */
import { z } from "zod";
import { CRITERIA, LikertScores } from "../../../protocol/mod.ts";

/** Version tag of the wire, in the hello; a program that speaks another is refused. */
export const PROCESS_PROTOCOL = "pop-process/1";

/** What a peer program can do; answer and judge are required, the rest optional. */
export const CAPABILITIES = ["answer", "judge", "train", "evaluate", "weights"] as const;
export const Capability = z.enum(CAPABILITIES);
export type Capability = z.output<typeof Capability>;

/** Request ids: the actor's own counter, echoed in the replies and progress of that request. */
export const RequestId = z.number().int().min(1);

/** The program's first line: who it is and what it can do. */
export const Hello = z.object({
  type: z.literal("hello"),
  protocol: z.literal(PROCESS_PROTOCOL),
  /** The model's name, for logs. */
  name: z.string().min(1).max(256),
  /** Must include answer and judge; train needs weights (the actor hands trained adapters to replicas). */
  capabilities: z.array(Capability),
  /** Identifies the base weights (e.g. a checkpoint hash); the actor's model version until the first adapter. */
  version: z.string().min(1).max(256).optional(),
  /** Trainable parameters, if known. */
  parameters: z.number().int().min(0).optional(),
});
export type Hello = z.output<typeof Hello>;

/** An image as a file's bytes, base64-encoded (generated raw-RGB images are sent as PNG). */
export const WireImage = z.object({
  format: z.enum(["png", "jpeg"]),
  width: z.number().int().min(1),
  height: z.number().int().min(1),
  /** The PNG or JPEG file, base64 (RFC 4648, with padding). */
  data: z.string(),
});
export type WireImage = z.output<typeof WireImage>;

/** A question about zero or more images. */
export const WirePrompt = z.object({
  /** Stable id of the prompt (the same prompt always has the same id; usable as a seed). */
  id: z.string(),
  question: z.string(),
  images: z.array(WireImage),
});
export type WirePrompt = z.output<typeof WirePrompt>;

/** answer: `k` sampled answers to each prompt. */
export const AnswerParams = z.object({
  prompts: z.array(WirePrompt),
  k: z.number().int().min(1),
  /** Softmax temperature; 0 means greedy. */
  temperature: z.number().min(0),
  /** The same seed, weights and prompts should give the same answers. */
  seed: z.number().int(),
  /** Upper bound on generated tokens per answer; absent: the program's own. */
  max_tokens: z.number().int().min(1).optional(),
  /** Nucleus sampling mass; absent: 1. */
  top_p: z.number().gt(0).max(1).optional(),
});

/** judge: score each candidate answer on the five criteria. */
export const JudgeParams = z.object({
  items: z.array(z.object({ prompt: WirePrompt, answer: z.string() })),
});

/** train: one SimPO run under the trainer contract (actors/trainers/contract.ts) in `work_dir`. */
export const TrainParams = z.object({
  /**
   * Absolute path of a trainer-contract work directory: settings.json, pairs.jsonl, images/. The
   * program writes the adapter into settings.output_dir and metrics.json last, then answers
   * with it loaded (later answers use it).
   */
  work_dir: z.string(),
});

/** load: answer with these weights from now on (an adapter a replica or an earlier run trained). */
export const LoadParams = z.object({
  /** Absolute path of an adapter directory, as a train request's output_dir held it. */
  adapter_dir: z.string(),
});

/** evaluate: held-out benchmark accuracy of the current weights. */
export const EvaluateParams = z.object({
  /** The iteration whose training the weights include (0: before any). */
  iteration: z.number().int().min(0),
  model_version: z.string(),
});

const request = <M extends string, P extends z.ZodType>(method: M, params: P) => z.object({ id: RequestId, method: z.literal(method), params });

/** What the actor asks; `method` says which, and which capability it needs (load: weights). */
export const PeerRequest = z.discriminatedUnion("method", [
  request("answer", AnswerParams),
  request("judge", JudgeParams),
  request("train", TrainParams),
  request("load", LoadParams),
  request("evaluate", EvaluateParams),
]);
export type PeerRequest = z.output<typeof PeerRequest>;
export type Method = PeerRequest["method"];
export type ParamsOf<M extends Method> = Extract<PeerRequest, { method: M }>["params"];

/** The capability each method needs. */
export const METHOD_CAPABILITY: Record<Method, Capability> = { answer: "answer", judge: "judge", train: "train", load: "weights", evaluate: "evaluate" };

/** Probabilities of the scores 1..5 (non-negative; normalised by the reader). */
export const ScoreDistribution = z.array(z.number().min(0)).length(5);

/** One candidate's scores: Likert 1–5 per criterion, a distribution over 1..5 per criterion, or an abstention. */
export const WireJudgement = z.union([
  z.object({ likert: LikertScores }).strict(),
  z
    .object({
      distribution: z.object(Object.fromEntries(CRITERIA.map((c) => [c, ScoreDistribution])) as Record<(typeof CRITERIA)[number], typeof ScoreDistribution>),
    })
    .strict(),
  z.object({ abstained: z.string().min(1) }).strict(),
]);
export type WireJudgement = z.output<typeof WireJudgement>;

/** Each method's result, in a `result` reply. */
export const RESULTS = {
  /** `answers[i]` holds the k answers to prompt i, in prompt order. */
  answer: z.object({ answers: z.array(z.array(z.string())) }),
  /** One judgement per item, in item order. */
  judge: z.object({ judgements: z.array(WireJudgement) }),
  /** Training's figures are in metrics.json (trainer contract); the reply only says it is done. */
  train: z.object({}),
  load: z.object({}),
  evaluate: z.object({
    /** Accuracy per suite, 0..1. */
    suites: z.record(z.string(), z.number().min(0).max(1)),
    /** Their unweighted mean. */
    average: z.number().min(0).max(1),
    items: z.number().int().min(0),
    /** Accuracy of guessing per suite, where known. */
    chance: z.record(z.string(), z.number().min(0).max(1)).optional(),
  }),
} satisfies Record<Method, z.ZodType>;
export type ResultOf<M extends Method> = z.output<(typeof RESULTS)[M]>;

/** A request's answer; `result` is checked against {@link RESULTS} of the request's method. */
export const PeerResult = z.object({ type: z.literal("result"), id: RequestId, result: z.record(z.string(), z.unknown()) });

/** A request the program could not do; `retryable`: the same request may succeed later (default false). */
export const PeerFailure = z.object({
  type: z.literal("error"),
  id: RequestId,
  message: z.string(),
  retryable: z.boolean().default(false),
});

/** Progress of a request in flight (training steps, mostly): logged, and shown as training progress. */
export const PeerProgress = z.object({
  type: z.literal("progress"),
  id: RequestId,
  /** Steps done of `total`, when the program can tell. */
  done: z.number().int().min(0).optional(),
  total: z.number().int().min(0).optional(),
  /** The step's loss and chosen-minus-rejected margin, for training curves. */
  loss: z.number().optional(),
  margin: z.number().optional(),
  /** A line for the log. */
  message: z.string().optional(),
});
export type PeerProgress = z.output<typeof PeerProgress>;

/** Every line a program writes to stdout. */
export const PeerMessage = z.discriminatedUnion("type", [Hello, PeerResult, PeerFailure, PeerProgress]);
export type PeerMessage = z.output<typeof PeerMessage>;

/** Every schema of the wire, by the name its JSON Schema is published under. */
export const PROCESS_SCHEMAS = {
  "process-request": PeerRequest,
  "process-message": PeerMessage,
  "process-result-answer": RESULTS.answer,
  "process-result-judge": RESULTS.judge,
  "process-result-train": RESULTS.train,
  "process-result-load": RESULTS.load,
  "process-result-evaluate": RESULTS.evaluate,
} as const;
