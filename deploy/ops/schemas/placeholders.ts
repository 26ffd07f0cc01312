/**
 * Placeholder values for the AsyncAPI document: subjects, keys and message ids are built by the
 * protocol's own builders from these values, then each value is replaced by its `{name}`, so the
 * document's addresses cannot drift from protocol/subjects.ts and protocol/envelope.ts. Each value
 * is a valid name (the builders check) that appears nowhere else in what they build.
 */
import { PROTOCOL_VERSION, controlEvent, candidateIdFor, type ControlEventName, type DeadLetter, type Message } from "../../../protocol/mod.ts";

/** A placeholder's value and the parameter it stands for. */
export const PLACEHOLDERS = {
  experiment: "x-experiment",
  iteration: 424242,
  author: "x-author",
  judge: "x-judge",
  peer: "x-peer",
  instance: "x-instance",
  promptId: "x-prompt-id",
  pairId: "x-pair-id",
  modelVersion: "x-model-version",
  streamSeq: 434343,
  at: 1_700_000_454_545,
  nuid: "x-nuid",
  object: "x-object",
} as const;

/** Another peer than {@link PLACEHOLDERS.peer}, to tell "its own" from "anyone's". */
export const OTHER_PEER = "x-other";

/** The dead-letter reason used in samples; its subject token has '-' for '_'. */
const REASON: DeadLetter["reason"] = "identity_mismatch";

/** Replaces every placeholder value in `text` with `{name}`. */
export function templated(text: string): string {
  let out = text;
  for (const [name, value] of Object.entries(PLACEHOLDERS)) out = out.split(String(value)).join(`{${name}}`);
  return out.split(REASON).join("{reason}").split(REASON.replace(/_/g, "-")).join("{reason}");
}

const P = PLACEHOLDERS;
const v = PROTOCOL_VERSION;
const exp = P.experiment;
const hash = `sha256-${"0".repeat(64)}`;
const train = { steps: 1, pairs: 1, lossFirst: 1, lossLast: 1, marginBefore: 0, marginAfter: 0, ms: 1 };

/** One valid message of every kind published on a stream, built from placeholders. */
export function streamSamples(): Message[] {
  const ctl = <E extends ControlEventName>(event: E, body: Parameters<typeof controlEvent<E>>[2]) => controlEvent(exp, event, { at: P.at, ...body });
  return [
    {
      v,
      type: "prompt",
      experiment: exp,
      iteration: P.iteration,
      promptId: P.promptId,
      question: "q",
      images: [{ hash, format: "png", width: 1, height: 1 }],
      createdAt: P.at,
    },
    {
      v,
      type: "candidates",
      experiment: exp,
      iteration: P.iteration,
      promptId: P.promptId,
      question: "q",
      images: [],
      author: P.author,
      modelVersion: P.modelVersion,
      sampling: { k: 1, temperature: 1, seed: 1 },
      candidates: [{ candidateId: candidateIdFor(P.promptId, P.author, 0), text: "a" }],
      createdAt: P.at,
    },
    {
      v,
      type: "verdict",
      experiment: exp,
      iteration: P.iteration,
      promptId: P.promptId,
      judge: P.judge,
      authors: [P.author],
      modelVersion: P.modelVersion,
      scores: [{ candidateId: candidateIdFor(P.promptId, P.author, 0), abstained: "unreadable" }],
      createdAt: P.at,
    },
    {
      v,
      type: "pair",
      experiment: exp,
      iteration: P.iteration,
      pairId: P.pairId,
      promptId: P.promptId,
      question: "q",
      images: [],
      chosen: { candidateId: "c0", author: P.author, text: "a", score: 1 },
      rejected: { candidateId: "c1", author: P.author, text: "b", score: 0 },
      margin: 1,
      judges: [P.judge],
      createdAt: P.at,
    },
    { v, type: "evaluation", experiment: exp, iteration: P.iteration, peer: P.peer, modelVersion: P.modelVersion, suites: {}, average: 0, items: 0, at: P.at },
    ctl("iteration_opened", { iteration: P.iteration, peers: [P.peer], prompts: 1 }),
    ctl("iteration_closed", { iteration: P.iteration, pairs: 0, voted: 0 }),
    ctl("training_done", { iteration: P.iteration, peer: P.peer, modelVersion: P.modelVersion, result: train }),
    ctl("model_published", { iteration: P.iteration, peer: P.peer, modelVersion: P.modelVersion, object: P.object, bytes: 1 }),
    ctl("peer_joined", { peer: P.peer, instance: P.instance }),
    ctl("peer_left", { peer: P.peer, instance: P.instance, reason: "shutdown" }),
    ctl("experiment_done", { iterations: 1 }),
    ctl("gave_up", { iteration: P.iteration, peer: P.peer, promptId: P.promptId, work: "judge", author: P.author, reason: "r" }),
    {
      v,
      type: "dead_letter",
      experiment: exp,
      reason: REASON,
      detail: "",
      subject: "",
      stream: "x-stream",
      streamSeq: P.streamSeq,
      deliveries: 1,
      consumer: "",
      headers: {},
      payload: new Uint8Array(0),
      payloadBytes: 0,
      at: P.at,
    },
  ];
}
