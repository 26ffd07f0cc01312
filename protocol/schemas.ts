/**
 * Every message of the PoP loop as a zod schema, with its inferred type. This file is the single
 * place where message shapes are defined; everything else imports them from here.
 */
import { z } from "zod";
import { Limits } from "./limits.ts";
import { NAME_PATTERN, NAME_RULE, type ControlEventName } from "./subjects.ts";
import { PROTOCOL_VERSION } from "./version.ts";

/** Lower-case name usable as one NATS subject token (the pattern is protocol/subjects.ts's). */
export const Name = z.string().regex(NAME_PATTERN, `must be ${NAME_RULE}`);
export const Iteration = z.number().int().min(0).max(1_000_000);
const Id = z.string().min(1).max(256);
const Millis = z.number().int().nonnegative();
/** A sha256 digest in lower-case hex. */
export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be a sha256 digest in lower-case hex");
const Text = z.string().max(64 * 1024);

/** The five HelpSteer2-style criteria, in their fixed order. */
export const CRITERIA = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"] as const;
export type Criterion = (typeof CRITERIA)[number];
/** A 1–5 Likert score; judges that read an output distribution give the expected (real) score. */
export const Likert = z.number().min(1).max(5);
export const LikertScores = z.object({
  helpfulness: Likert,
  correctness: Likert,
  coherence: Likert,
  complexity: Likert,
  verbosity: Likert,
});
export type LikertScores = z.infer<typeof LikertScores>;

/** An image stored in the object store under its content hash. Messages carry only this reference. */
export const ImageRef = z.object({
  hash: z.string().regex(/^sha256-[0-9a-f]{64}$/, "must be 'sha256-' and 64 hex digits"),
  format: z.enum(["rgb8", "png", "jpeg"]),
  width: z.number().int().positive().max(16384),
  height: z.number().int().positive().max(16384),
});
export type ImageRef = z.infer<typeof ImageRef>;

const base = { v: z.literal(PROTOCOL_VERSION), experiment: Name };

/** Voting rule and thresholds (paper defaults: chosen >= 0.85, margin >= 0.75). */
export const VotingConfig = z.object({
  /** Minimum mean-voted score of the chosen response, in [0, 1]. */
  minChosen: z.number().min(0).max(1).default(0.85),
  /** Minimum score margin chosen − rejected, in [0, 1]. */
  minMargin: z.number().min(0).max(1).default(0.75),
  /** Whether an author's own verdicts count for its candidates. */
  selfJudging: z.boolean().default(false),
  /** "pooled": one pair per prompt across the panel; "per-member": one pair per prompt and author. */
  pairing: z.enum(["pooled", "per-member"]).default("pooled"),
  /** How the five normalised criteria combine into one score. */
  combine: z.enum(["mean", "correctness"]).default("mean"),
  /** Minimum number of judges that must have scored a candidate for it to be voted. */
  minJudges: z.number().int().min(1).default(1),
  /**
   * How the judges' scores of one candidate become its score (coordinator/voting.ts): "mean"
   * (the paper's), "median", "trimmed" (the mean without the highest and lowest fifth, at least
   * one each side from three judges on), or "agreement" (a mean weighted by how well each judge
   * agrees with the others on the prompt's candidates; judges that invert, flatten or randomise
   * their scores weigh little or nothing).
   */
  aggregate: z.enum(["mean", "median", "trimmed", "agreement"]).default("mean"),
});
/** The rules {@link VotingConfig.aggregate} offers. */
export const AGGREGATES = VotingConfig.shape.aggregate.unwrap().options;
export type VotingConfig = z.infer<typeof VotingConfig>;

/**
 * How the panel judges. `judgesPerAuthor`: how many members judge each author's candidates of a
 * prompt, chosen per prompt and author by protocol/judges.ts (balanced, the same on every
 * process); "all" (the default, the paper's): every member other than the author, so judging
 * grows as N². A judge judges and waits for only the authors it is assigned; the vote waits for
 * only the assigned judges, and goes on without an assigned judge that died or gave up (its share
 * is not handed to another member: the assignment stays a pure function of the panel). The
 * coordinator dead-letters a verdict on an author its judge was not assigned. Self-judging
 * (`voting.selfJudging`) is on top of the assignment. The robust `voting.aggregate` rules need
 * at least three judges per candidate (coordinator/voting.ts warns).
 *
 * `mode`: how a served judge (the openai backend) asks for its scores. "single": one request per
 * candidate whose reply gives all five criteria, one line each; a criterion the reply misses is
 * asked for alone. "per-criterion": one request per candidate and criterion (five times the
 * requests; what every judge did before this setting). Backends that score in process ignore it.
 */
export const JudgingConfig = z.object({
  judgesPerAuthor: z.union([z.literal("all"), z.number().int().min(1).max(1000)]).default("all"),
  mode: z.enum(["single", "per-criterion"]).default("single"),
});
export type JudgingConfig = z.infer<typeof JudgingConfig>;
/** The modes {@link JudgingConfig.mode} offers. */
export const JUDGING_MODES = JudgingConfig.shape.mode.unwrap().options;
export type JudgingMode = JudgingConfig["mode"];

/**
 * SimPO settings sent to every member: the one definition of the training settings (a backend's
 * SimpoOptions and the trainer contract's settings.json derive from it). The loss (Meng et al.
 * 2024, plus CPO-SimPO's NLL term) is
 * -log sigmoid(beta/|y_w| log p(y_w|x) - beta/|y_l| log p(y_l|x) - gamma) + sftWeight x NLL(y_w)/|y_w|.
 * The defaults suit the embedded tiny model (the paper's 7B members use learning rates around
 * 1e-6): beta 2 and gamma 1 (gamma/beta 0.5, the SimPO authors' starting point).
 */
export const TrainingConfig = z.object({
  /** Reward scale. */
  beta: z.number().positive().default(2.0),
  /** Absolute target margin (not gamma/beta). */
  gamma: z.number().min(0).default(1.0),
  /** The first iteration's learning rate (see learningRateDecay). */
  learningRate: z.number().positive().default(5e-4),
  /**
   * The learning rate of iteration i is learningRate x learningRateDecay^(i-1): later iterations,
   * with fewer and harder pairs, move the weights less. 1 keeps it constant.
   */
  learningRateDecay: z.number().positive().max(1).default(1),
  /** Passes over the iteration's pairs. */
  epochs: z.number().int().positive().default(3),
  /** Pairs per optimizer step (after gradient accumulation). */
  batchSize: z.number().int().positive().default(32),
  /**
   * Weight of a length-averaged NLL term on the chosen answers (CPO-SimPO; TRL's `cpo_alpha`).
   * 0 is the paper's pure SimPO.
   */
  sftWeight: z.number().min(0).default(0),
  /**
   * Weight of a term that keeps the member's judge outputs where they were before this training
   * (self-distillation on the pairs' answers), so that learning to answer does not unlearn
   * judging. The embedded model implements it (its default is 1); unset: the backend's default;
   * trainers without such a term ignore it.
   */
  judgeAnchor: z.number().min(0).optional(),
  /** "same": every member trains on all pairs; "authored-by-others": a member skips pairs whose chosen it wrote. */
  pairsFor: z.enum(["same", "authored-by-others"]).default("same"),
});
export type TrainingConfig = z.infer<typeof TrainingConfig>;

/**
 * How coordinator processes share the lead: one holds a lease in the state bucket and renews it
 * every `leaseMs / 3`; a standby takes over once the lease's revision has not changed for
 * `leaseMs` by its own clock; a leader that could not renew stops publishing at 0.8 × `leaseMs`.
 */
export const CoordinationConfig = z.object({
  /** How long an unrenewed lease lasts before a standby may take over (default 10 s). */
  leaseMs: Millis.min(300).default(10_000),
});
export type CoordinationConfig = z.infer<typeof CoordinationConfig>;

/** An experiment: everything a peer needs to take part, stored once in the state bucket. */
export const ExperimentConfig = z.object({
  ...base,
  type: z.literal("experiment"),
  createdAt: Millis,
  iterations: z.number().int().min(1).max(1000),
  promptsPerIteration: z.number().int().min(1),
  /**
   * Prompts of an iteration open at once: the coordinator publishes the next as earlier ones are
   * voted, so what every process holds (the coordinator's tallies, a judge's gathered batches)
   * is bounded by this, not by the iteration's size. Keep it well above what the panel answers
   * in `judgeLingerMs` so that nobody waits on the window (default 1000). Work a live member
   * silently never does (rather than giving it up) holds its prompt's place until `deadlines.voteMs`.
   */
  openPrompts: z.number().int().min(1).default(1000),
  /** Which prompt pool the coordinator draws from, e.g. the tiny world's seed. */
  pool: z.object({
    name: Name,
    offset: z.number().int().min(0).default(0),
    /**
     * sha256 (hex) of the pool's stored index object, pinned when the config is written: the
     * coordinator refuses a pool whose index differs, and the index pins each chunk's sha256.
     * Absent in configs written before pools were pinned (read unverified, with a warning).
     */
    sha256: Sha256.optional(),
  }),
  /** Live peers needed to open the first iteration (the paper's panel has at least three). */
  minPeers: z.number().int().min(1).default(3),
  /** Live peers needed to open a later iteration; lower than `minPeers` lets a run outlive a lost member. */
  minPeersToContinue: z.number().int().min(1).default(2),
  sampling: z.object({
    k: z.number().int().min(1).max(64),
    temperature: z.number().min(0).max(10),
    maxTokens: z.number().int().positive().optional(),
  }),
  voting: VotingConfig,
  /** Who judges whose candidates and how served judges ask (absent in configs written before it existed: the defaults). */
  judging: JudgingConfig.prefault({}),
  training: TrainingConfig,
  /**
   * The defaults fit real models, where an iteration takes hours and members drift hours apart
   * in the prompt stream (a fast member answers a prompt long before a slow one does); a member
   * that dies is dropped by its lapsed heartbeat long before these deadlines. The demo sets
   * minutes for its tiny panel.
   */
  deadlines: z.object({
    /** A prompt is voted at most this long after its first candidate arrived, with whatever verdicts are in (default 6 h). */
    voteMs: Millis.default(6 * 3600_000),
    /** Training waits this long for the whole panel, then goes on with a quorum (default 24 h: a 7B LoRA run takes hours). */
    trainMs: Millis.default(24 * 3600_000),
    /** Fraction of the panel that must report training before the deadline may advance. */
    trainQuorum: z.number().min(0).max(1).default(1),
    /**
     * How long a judge holds a prompt's first candidate batch waiting for the other authors', so
     * that one verdict covers them all (default 10 s); a batch later than that gets its own.
     */
    judgeLingerMs: Millis.default(10_000),
  }),
  /** What the server lets the experiment store (protocol/limits.ts has the defaults). */
  limits: Limits.prefault({}),
  heartbeat: z.object({
    intervalMs: Millis.default(2_000),
    /** A member whose last heartbeat is older than this is dropped. */
    lapseMs: Millis.default(15_000),
  }),
  /** The coordinator's lease (coordinator/lease.ts); absent in configs written before it existed: the defaults. */
  coordination: CoordinationConfig.prefault({}),
});
export type ExperimentConfig = z.infer<typeof ExperimentConfig>;

/** One unlabeled prompt of an iteration. */
export const Prompt = z.object({
  ...base,
  type: z.literal("prompt"),
  iteration: Iteration,
  promptId: Id,
  question: Text,
  images: z.array(ImageRef).max(16),
  createdAt: Millis,
});
export type Prompt = z.infer<typeof Prompt>;

/** A peer's k candidate answers to one prompt. */
export const CandidateBatch = z
  .object({
    ...base,
    type: z.literal("candidates"),
    iteration: Iteration,
    promptId: Id,
    /** The prompt, repeated so that judges need nothing else (images stay references). */
    question: Text,
    images: z.array(ImageRef).max(16),
    author: Name,
    modelVersion: Id,
    sampling: z.object({ k: z.number().int().min(1), temperature: z.number().min(0), seed: z.number().int() }),
    candidates: z
      .array(z.object({ candidateId: Id, text: Text }))
      .min(1)
      .max(64),
    createdAt: Millis,
  })
  .superRefine((b, ctx) =>
    checkCandidateIds(
      b.promptId,
      b.author,
      b.candidates.map((c) => c.candidateId),
      ctx,
      "candidates",
    ),
  );
export type CandidateBatch = z.infer<typeof CandidateBatch>;

/** The id of a prompt's i-th candidate from an author: a verdict can name no other batch's. */
export const candidateIdFor = (promptId: string, author: string, i: number) => `${promptId}:${author}:${i}`;

/** The author a candidate id of the prompt names (undefined: not one of the prompt's candidate ids). */
export function authorOfCandidate(promptId: string, candidateId: string): string | undefined {
  if (!candidateId.startsWith(`${promptId}:`)) return undefined;
  const rest = candidateId.slice(promptId.length + 1);
  const colon = rest.lastIndexOf(":");
  if (colon <= 0 || !/^\d+$/.test(rest.slice(colon + 1))) return undefined;
  const author = rest.slice(0, colon);
  return NAME_PATTERN.test(author) ? author : undefined;
}

/**
 * Candidate ids name their batch (`<promptId>:<author>:<index>`) and appear once: a verdict that
 * scores another batch's candidates, or one candidate twice (to outweigh the other judges), is
 * invalid whatever its scores.
 */
function checkCandidateIds(promptId: string, author: string, ids: string[], ctx: z.RefinementCtx, field: string): void {
  const prefix = `${promptId}:${author}:`;
  const seen = new Set<string>();
  ids.forEach((id, i) => {
    if (!id.startsWith(prefix) || !/^\d+$/.test(id.slice(prefix.length))) {
      ctx.addIssue({ code: "custom", path: [field, i, "candidateId"], message: `'${id}' is not a candidate of this batch (expected '${prefix}<index>')` });
    } else if (seen.has(id)) {
      ctx.addIssue({ code: "custom", path: [field, i, "candidateId"], message: `'${id}' appears more than once` });
    }
    seen.add(id);
  });
}

/**
 * A judge's word on one candidate: five Likert scores, or an abstention with the reason (the
 * judge's output could not be read as a score even after a retry). The vote leaves abstentions
 * out; they stay in the verdict so anyone can see which judge abstained and why.
 */
export const VerdictScore = z
  .object({ candidateId: Id, likert: LikertScores.optional(), abstained: z.string().min(1).max(1024).optional() })
  .refine((s) => (s.likert === undefined) !== (s.abstained === undefined), "must have either likert scores or an abstention reason, not both");
export type VerdictScore = z.infer<typeof VerdictScore>;

/**
 * One judge's scores on one prompt's candidates, from every author it judged together: a judge
 * gathers the prompt's batches and sends one verdict for all of them (a batch that comes later
 * than the judge waits gets a verdict of its own), so messages per prompt grow linearly with the
 * panel. Each author's candidates are scored whole, once. Under `judging.judgesPerAuthor` a judge
 * scores only the authors it is assigned (protocol/judges.ts); the coordinator dead-letters a
 * verdict on any other author (the schema cannot tell: it needs the iteration's panel).
 */
export const Verdict = z
  .object({
    ...base,
    type: z.literal("verdict"),
    iteration: Iteration,
    promptId: Id,
    judge: Name,
    /** The authors whose candidates are scored, each once, sorted. */
    authors: z.array(Name).min(1).max(64),
    modelVersion: Id,
    scores: z.array(VerdictScore).min(1).max(4096),
    createdAt: Millis,
  })
  .superRefine((v, ctx) => {
    if (new Set(v.authors).size !== v.authors.length) ctx.addIssue({ code: "custom", path: ["authors"], message: "an author appears more than once" });
    if (v.authors.some((a, i) => i > 0 && v.authors[i - 1]! > a)) ctx.addIssue({ code: "custom", path: ["authors"], message: "authors must be sorted" });
    const { byAuthor, strays } = scoresByAuthor(v);
    for (const i of strays)
      ctx.addIssue({
        code: "custom",
        path: ["scores", i, "candidateId"],
        message: `'${v.scores[i]!.candidateId}' is not a candidate of prompt ${v.promptId} by one of the verdict's authors (${v.authors.join(", ")})`,
      });
    for (const [author, scores] of byAuthor) {
      if (scores.length === 0) ctx.addIssue({ code: "custom", path: ["authors"], message: `no scores for author '${author}'` });
      else
        checkCandidateIds(
          v.promptId,
          author,
          scores.map((s) => s.candidateId),
          ctx,
          "scores",
        );
    }
  });
export type Verdict = z.infer<typeof Verdict>;

/**
 * A verdict's scores split by the author each candidate id names, in the verdict's author order;
 * `strays`: indexes of scores naming no author of the verdict (a valid verdict has none).
 */
export function scoresByAuthor(v: Pick<Verdict, "promptId" | "authors" | "scores">): { byAuthor: Map<string, VerdictScore[]>; strays: number[] } {
  const byAuthor = new Map<string, VerdictScore[]>(v.authors.map((a) => [a, []]));
  const strays: number[] = [];
  v.scores.forEach((s, i) => {
    const author = authorOfCandidate(v.promptId, s.candidateId);
    const list = author === undefined ? undefined : byAuthor.get(author);
    if (list) list.push(s);
    else strays.push(i);
  });
  return { byAuthor, strays };
}

const PairSide = z.object({
  candidateId: Id,
  author: Name,
  text: Text,
  /** Mean-voted score in [0, 1]. */
  score: z.number().min(0).max(1),
});

/** A preference pair assembled by mean voting. */
export const PreferencePair = z.object({
  ...base,
  type: z.literal("pair"),
  iteration: Iteration,
  /** Deterministic: experiment, iteration, prompt (and author under per-member pairing). */
  pairId: Id,
  promptId: Id,
  question: Text,
  images: z.array(ImageRef).max(16),
  chosen: PairSide,
  rejected: PairSide,
  margin: z.number().min(0).max(1),
  /** Judges whose verdicts were counted. */
  judges: z.array(Name),
  /** Only under per-member pairing: the member this pair is for. */
  forPeer: Name.optional(),
  createdAt: Millis,
});
export type PreferencePair = z.infer<typeof PreferencePair>;

/**
 * What a training run did, for logs and the experiment record: what a backend's `train` returns
 * (actors/models/contract.ts) and what training_done and the model record carry.
 */
export const TrainSummary = z.object({
  /** Optimisation steps taken. */
  steps: z.number().int().min(0),
  /** Pairs trained on. */
  pairs: z.number().int().min(0),
  /** The total loss at the first step and the last. */
  lossFirst: z.number(),
  lossLast: z.number(),
  /** Each term of the loss (e.g. simpo, nll, anchor), at the first step and the last, unweighted. */
  terms: z.record(z.string().max(32), z.tuple([z.number(), z.number()])).optional(),
  /** Mean length-averaged log-prob margin chosen − rejected over the pairs, before and after training. */
  marginBefore: z.number(),
  marginAfter: z.number(),
  /** Wall time of the run. */
  ms: z.number().min(0),
  /** [step, loss, margin] at evenly spaced steps (the last included), for training curves (absent where the backend does not report it). */
  curve: z
    .array(z.tuple([z.number().int().min(0), z.number().finite(), z.number().finite()]))
    .max(256)
    .optional(),
});
export type TrainSummary = z.infer<typeof TrainSummary>;

/**
 * What model calls cost, summed over calls (actors/models/usage.ts says who counts what).
 * `requests`: requests sent to the model: each HTTP request to a served model (a retry is
 * another), each call into an embedded one. `promptTokens`: tokens the model read;
 * `completionTokens`: tokens it generated (0 where a backend does not count them).
 * `seconds`: wall time of the requests, from sending to the reply (waiting in the server's queue
 * included; requests in flight together each count their own). `modelSeconds`: time the model
 * computed, where the backend can tell it apart from waiting (the embedded model's compute time).
 */
export const Usage = z.object({
  requests: z.number().int().min(0),
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
  seconds: z.number().min(0),
  modelSeconds: z.number().min(0).optional(),
});
export type Usage = z.infer<typeof Usage>;

/** What a peer does with its model, as cost is counted. */
export const PHASES = ["answer", "judge", "train", "evaluate"] as const;
export type Phase = (typeof PHASES)[number];

/** Usage by phase (a phase with no model calls is absent). */
export const PhaseCost = z.object({ answer: Usage.optional(), judge: Usage.optional(), train: Usage.optional(), evaluate: Usage.optional() });
export type PhaseCost = z.infer<typeof PhaseCost>;

/** One process's cost of one iteration by phase (evaluation: of the weights trained on it; iteration 0: before any). */
export const IterationCost = z.object({ iteration: Iteration, phases: PhaseCost });
export type IterationCost = z.infer<typeof IterationCost>;

/** Lifecycle events of an experiment; `event` says which. */
export const ControlEvent = z.discriminatedUnion("event", [
  z.object({
    ...base,
    type: z.literal("control"),
    event: z.literal("iteration_opened"),
    iteration: Iteration,
    peers: z.array(Name),
    prompts: z.number().int().min(0),
    at: Millis,
  }),
  z.object({
    ...base,
    type: z.literal("control"),
    event: z.literal("iteration_closed"),
    iteration: Iteration,
    pairs: z.number().int().min(0),
    voted: z.number().int().min(0),
    at: Millis,
  }),
  z.object({
    ...base,
    type: z.literal("control"),
    event: z.literal("training_done"),
    iteration: Iteration,
    peer: Name,
    modelVersion: Id,
    result: TrainSummary,
    /**
     * What the announcing process's model calls for this iteration cost until now, by phase
     * (answering, judging, training and evaluating it; other processes of the peer count their
     * own in their member records). Absent from peers older than this field.
     */
    cost: PhaseCost.optional(),
    at: Millis,
  }),
  z.object({
    ...base,
    type: z.literal("control"),
    event: z.literal("model_published"),
    iteration: Iteration,
    peer: Name,
    modelVersion: Id,
    object: Id,
    bytes: z.number().int().min(0),
    at: Millis,
  }),
  z.object({ ...base, type: z.literal("control"), event: z.literal("peer_joined"), peer: Name, instance: Name, at: Millis }),
  z.object({
    ...base,
    type: z.literal("control"),
    event: z.literal("peer_left"),
    peer: Name,
    instance: Name,
    reason: z.enum(["shutdown", "lapsed"]),
    at: Millis,
  }),
  z.object({ ...base, type: z.literal("control"), event: z.literal("experiment_done"), iterations: z.number().int().min(0), at: Millis }),
  /**
   * A member gave up on a piece of work (its model failed on it for good; the delivery went to
   * the dead letters): its answer to a prompt, or its verdict on one author's batch of it. The
   * coordinator stops waiting for that, so one prompt a model cannot handle does not hold its
   * iteration (and a place in the prompt window) until the vote deadline.
   */
  z.object({
    ...base,
    type: z.literal("control"),
    event: z.literal("gave_up"),
    iteration: Iteration,
    peer: Name,
    promptId: Id,
    work: z.enum(["answer", "judge"]),
    /** For "judge": whose batch. */ author: Name.optional(),
    reason: z.string().max(1024),
    at: Millis,
  }),
]);
export type ControlEvent = z.infer<typeof ControlEvent>;
// The event names are protocol/subjects.ts's (their subjects depend on them); each has a body here and no other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
true satisfies Same<ControlEvent["event"], ControlEventName>;

/** A member's benchmark accuracy after an iteration (iteration 0: before any training). */
export const EvaluationResult = z.object({
  ...base,
  type: z.literal("evaluation"),
  iteration: Iteration,
  peer: Name,
  modelVersion: Id,
  suites: z.record(z.string().min(1).max(64), z.number().min(0).max(1)),
  average: z.number().min(0).max(1),
  items: z.number().int().min(0),
  /** How long the evaluation took (absent from peers older than this field). */
  ms: z.number().min(0).optional(),
  /** Accuracy of guessing per suite, where the benchmark knows it. */
  chance: z.record(z.string().min(1).max(64), z.number().min(0).max(1)).optional(),
  at: Millis,
});
export type EvaluationResult = z.infer<typeof EvaluationResult>;

/** Dead letters keep at most this many bytes of the original, so they always fit a NATS message. */
export const DEAD_LETTER_MAX_PAYLOAD = 256 * 1024;

/** A message that could not be processed, kept with the reason and its original bytes. */
export const DeadLetter = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal("dead_letter"),
  /** Experiment from the subject, or "unknown". */
  experiment: Name,
  reason: z.enum(["malformed", "invalid", "unsupported_version", "identity_mismatch", "bad_subject", "not_member", "handler_failed", "stale_leader"]),
  detail: z.string().max(8192),
  subject: z.string().max(1024),
  stream: z.string().max(256),
  streamSeq: z.number().int().min(0),
  deliveries: z.number().int().min(0),
  consumer: z.string().max(256),
  headers: z.record(z.string(), z.array(z.string())),
  /** The original bytes (the first {@link DEAD_LETTER_MAX_PAYLOAD} of them). */
  payload: z.custom<Uint8Array>((v) => v instanceof Uint8Array, "must be bytes").transform((v) => (v.constructor === Uint8Array ? v : Uint8Array.from(v))),
  /** Original size in bytes; larger than `payload.length` when the payload was cut. */
  payloadBytes: z.number().int().min(0),
  at: Millis,
});
export type DeadLetter = z.infer<typeof DeadLetter>;

/** A live process serving a peer, kept fresh in the membership bucket by heartbeats. */
export const Member = z.object({
  ...base,
  type: z.literal("member"),
  peer: Name,
  instance: Name,
  backend: z.string().max(64),
  modelVersion: Id,
  host: z.string().max(256),
  pid: z.number().int().min(0),
  joinedAt: Millis,
  heartbeatAt: Millis,
  /** "active" while serving, "leaving" once it starts a clean shutdown. */
  state: z.enum(["active", "leaving"]),
  /**
   * Long work in progress, for watchers: training on an iteration's pairs (`done` of `total` steps,
   * with the latest step's loss and margin where the backend reports them) or evaluating.
   */
  activity: z
    .object({
      doing: z.enum(["training", "evaluating"]),
      iteration: Iteration,
      done: z.number().int().min(0),
      total: z.number().int().min(0),
      loss: z.number().finite().optional(),
      margin: z.number().finite().optional(),
    })
    .optional(),
  /**
   * This process's model cost since it started: the running total by phase and the latest
   * iterations' own (at most {@link MEMBER_COST_ITERATIONS}, oldest first).
   */
  cost: z.object({ total: PhaseCost, iterations: z.array(IterationCost).max(16) }).optional(),
});
/** Iterations whose cost a member record carries. */
export const MEMBER_COST_ITERATIONS = 4;
export type Member = z.infer<typeof Member>;

/**
 * An iteration's prompts as a stretch of its pool: `count` prompts from pool position `offset`
 * on, in pool order. A range, not a list of ids, so the record stays a few bytes at any size.
 */
export const PromptRange = z.object({ pool: Name, offset: z.number().int().min(0), count: z.number().int().min(1) });
export type PromptRange = z.infer<typeof PromptRange>;

/** The record of an opened iteration: who takes part and which prompts it has. */
export const IterationRecord = z.object({
  ...base,
  type: z.literal("iteration"),
  iteration: Iteration,
  peers: z.array(Name),
  prompts: PromptRange,
  openedAt: Millis,
});
export type IterationRecord = z.infer<typeof IterationRecord>;

/** Where the coordinator is: restarts carry on from here. */
export const Progress = z.object({
  ...base,
  type: z.literal("progress"),
  /** The current iteration (0 before the first opens). */
  iteration: Iteration,
  phase: z.enum(["collecting", "training", "done"]),
  at: Millis,
});
export type Progress = z.infer<typeof Progress>;

/** The latest weights a peer published; a restarted actor loads these. */
export const ModelRecord = z.object({
  ...base,
  type: z.literal("model"),
  peer: Name,
  /** The iteration whose pairs these weights were trained on (0: the starting checkpoint). */
  iteration: Iteration,
  modelVersion: Id,
  object: Id,
  bytes: z.number().int().min(0),
  /**
   * sha256 (hex) of the weights object's bytes: a loader refuses bytes that differ. Absent in
   * records written before weights had owners (then `bucket` is absent too).
   */
  sha256: Sha256.optional(),
  /**
   * The object bucket holding `object`: the peer's own (topology.ts `weightsBucket`), which only
   * it may write. Absent: the shared bucket of records written before weights had owners.
   */
  bucket: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,200}$/)
    .optional(),
  /** What the training run did (absent for a starting checkpoint). */
  train: TrainSummary.optional(),
  /**
   * The process (member instance) that trained these weights, so it does not load them again as
   * if a replica had trained them. Absent in records written before it existed.
   */
  instance: Name.optional(),
  at: Millis,
});
export type ModelRecord = z.infer<typeof ModelRecord>;

/**
 * Where the lead changed hands: from `after` on (a stream's last sequence when `token` took the
 * lease), coordinator messages with a lower token are stale (protocol/fence.ts).
 */
export const FenceBoundary = z.object({
  token: z.number().int().min(1),
  instance: z.string().max(128),
  since: Millis,
  /** Stream name → its last sequence just before this token's lease was written. */
  after: z.record(z.string().max(256), z.number().int().min(0)),
});
export type FenceBoundary = z.infer<typeof FenceBoundary>;

/**
 * The coordinator's lease, under the experiment's `lease` state key: who leads, with which
 * fencing token, and every earlier hand-over's boundary (readers judge stored messages by them).
 * Renewals rewrite it with a revision check; a holder that shuts down sets `released`.
 */
export const LeaseRecord = z.object({
  ...base,
  type: z.literal("lease"),
  /** The leading process (its instance id). */
  instance: z.string().max(128),
  /** The fencing token: higher on every takeover; every coordinator publication carries it. */
  token: z.number().int().min(1),
  /** When the holder took the lease (its clock; for display). */
  since: Millis,
  /** When it last renewed (its clock; for display: standbys judge lapse by their own clock). */
  renewedAt: Millis,
  /** The holder let go (shut down): a standby may take over at once. */
  released: z.boolean().default(false),
  fences: z.array(FenceBoundary).max(10_000),
});
export type LeaseRecord = z.infer<typeof LeaseRecord>;

/** One prompt of a pool, without the iteration it is published in. */
export const PoolPrompt = z.object({ promptId: Id, question: Text, images: z.array(ImageRef).max(16) });
export type PoolPrompt = z.infer<typeof PoolPrompt>;

/**
 * A chunked pool's index (protocol/pool.ts): how many prompts, where each chunk starts, the
 * number each chunk's first prompt id ends with (pool prompt ids end in a number that grows
 * along the pool, so an id finds its chunk), and a digest of the content (ids, questions, image
 * references) that tells an identical reload.
 */
export const PoolChunks = z.object({
  count: z.number().int().min(1),
  starts: z.array(z.number().int().min(0)).min(1),
  keys: z.array(z.number().int().min(0)),
  digest: z.string().max(128),
  /** sha256 (hex) of each chunk object's bytes, by chunk; a reader refuses a chunk that differs. Absent in pools stored before. */
  chunkSha256: z.array(Sha256).optional(),
});
export type PoolChunks = z.infer<typeof PoolChunks>;

/**
 * An unlabeled prompt pool in the object store; the coordinator draws from it. Three forms: a
 * whole pool in one object (`prompts`, written before pools were chunked; still read), a chunked
 * pool's index (`chunks`, no prompts) under the pool's name, or one chunk (`prompts` from pool
 * position `first` on) under the pool's name and the chunk's number.
 */
export const PromptPool = z
  .object({
    ...base,
    type: z.literal("pool"),
    name: Name,
    prompts: z.array(PoolPrompt),
    first: z.number().int().min(0).optional(),
    chunks: PoolChunks.optional(),
  })
  .refine((p) => p.prompts.length > 0 !== (p.chunks !== undefined), { message: "a pool holds prompts or (as a chunked pool's index) chunks, not both" });
export type PromptPool = z.infer<typeof PromptPool>;

/** Any protocol message, discriminated by `type`. */
export const Message = z.discriminatedUnion("type", [
  ExperimentConfig,
  Prompt,
  CandidateBatch,
  Verdict,
  PreferencePair,
  ControlEvent,
  EvaluationResult,
  DeadLetter,
  Member,
  IterationRecord,
  Progress,
  ModelRecord,
  PromptPool,
  LeaseRecord,
]);
export type Message = z.infer<typeof Message>;
export type MessageType = Message["type"];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Schema per message type, for decoding a message of an expected type. */
export const SCHEMAS = {
  experiment: ExperimentConfig,
  prompt: Prompt,
  candidates: CandidateBatch,
  verdict: Verdict,
  pair: PreferencePair,
  control: ControlEvent,
  evaluation: EvaluationResult,
  dead_letter: DeadLetter,
  member: Member,
  iteration: IterationRecord,
  progress: Progress,
  model: ModelRecord,
  pool: PromptPool,
  lease: LeaseRecord,
} as const satisfies Record<MessageType, z.ZodType>;
