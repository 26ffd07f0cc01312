/**
 * How a message travels: its subject, its NATS headers (readable with `nats sub --headers-only`)
 * and its deterministic message id (JetStream dedupe makes republishing harmless).
 */
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { DecodeError } from "./errors.ts";
import type { Message } from "./schemas.ts";
import { parseSubject, subjects } from "./subjects.ts";
import { PROTOCOL_VERSION } from "./version.ts";

/** Header names set on every published message. */
export const HEADER = {
  type: "Pop-Type",
  experiment: "Pop-Experiment",
  iteration: "Pop-Iteration",
  peer: "Pop-Peer",
  event: "Pop-Event",
  protocol: "Pop-Protocol",
  /** The coordinator's fencing token (protocol/fence.ts), on its publications only. */
  fence: "Pop-Fence",
} as const;

/** The identity a message claims (author, judge or peer), if its kind has one. */
export function claimedIdentity(message: Message): string | undefined {
  switch (message.type) {
    case "candidates":
      return message.author;
    case "verdict":
      return message.judge;
    case "evaluation":
    case "member":
    case "model":
      return message.peer;
    case "control":
      return "peer" in message ? message.peer : undefined;
    default:
      return undefined;
  }
}

function iterationOf(message: Message): number | undefined {
  return "iteration" in message && typeof message.iteration === "number" ? message.iteration : undefined;
}

/** The subject a message is published on. */
export function subjectFor(message: Message): string {
  const exp = message.experiment;
  switch (message.type) {
    case "prompt":
      return subjects.prompt(exp, message.iteration);
    case "candidates":
      return subjects.candidates(exp, message.iteration, message.author);
    case "verdict":
      return subjects.verdict(exp, message.iteration, message.judge);
    case "pair":
      return subjects.pair(exp, message.iteration);
    case "evaluation":
      return subjects.evaluation(exp, message.iteration, message.peer);
    case "control":
      return subjects.control(exp, message.event, "peer" in message ? message.peer : undefined);
    case "dead_letter":
      return subjects.dead(exp, message.reason);
    default:
      throw new DecodeError("invalid", [`'${message.type}' messages are stored in a bucket, not published on a stream`]);
  }
}

/** Deterministic message id: the same logical message always gets the same id. */
export function messageIdFor(message: Message): string {
  const exp = message.experiment;
  switch (message.type) {
    case "prompt":
      return `prompt:${exp}:${message.iteration}:${message.promptId}`;
    case "candidates":
      return `cand:${exp}:${message.iteration}:${message.promptId}:${message.author}`;
    case "verdict":
      return `verdict:${exp}:${message.iteration}:${message.promptId}:${message.authors.join(",")}:${message.judge}`;
    case "pair":
      return `pair:${exp}:${message.pairId}`;
    case "evaluation":
      return `eval:${exp}:${message.iteration}:${message.peer}:${message.modelVersion}`;
    case "control":
      switch (message.event) {
        case "iteration_opened":
        case "iteration_closed":
          return `ctl:${exp}:${message.event}:${message.iteration}`;
        case "training_done":
        case "model_published":
          return `ctl:${exp}:${message.event}:${message.iteration}:${message.peer}`;
        case "peer_joined":
        case "peer_left":
          return `ctl:${exp}:${message.event}:${message.peer}:${message.instance}:${message.at}`;
        case "experiment_done":
          return `ctl:${exp}:${message.event}`;
        case "gave_up":
          return `ctl:${exp}:${message.event}:${message.iteration}:${message.peer}:${message.promptId}:${message.work}:${message.author ?? ""}`;
      }
      break;
    case "dead_letter":
      return `dead:${message.stream}:${message.streamSeq}:${message.reason}`;
  }
  return `${message.type}:${exp}:${message.v}`;
}

/** NATS headers describing a message in plain words. */
export function headersFor(message: Message): MsgHdrs {
  const h = natsHeaders();
  h.set(HEADER.type, message.type === "control" ? `control/${message.event}` : message.type);
  h.set(HEADER.experiment, message.experiment);
  h.set(HEADER.protocol, String(PROTOCOL_VERSION));
  const it = iterationOf(message);
  if (it !== undefined) h.set(HEADER.iteration, String(it));
  const peer = claimedIdentity(message);
  if (peer !== undefined) h.set(HEADER.peer, peer);
  return h;
}

/**
 * Checks that a decoded message belongs on the subject it arrived on. A message whose claimed
 * identity differs from the subject's is `identity_mismatch` (forged or misrouted); any other
 * difference (kind, experiment, iteration) is `bad_subject`.
 */
export function verifyEnvelope(subject: string, message: Message): void {
  const parsed = parseSubject(subject);
  const claimed = claimedIdentity(message);
  if (parsed.peer !== undefined && claimed !== undefined && claimed !== parsed.peer) {
    throw new DecodeError("identity_mismatch", [`published as '${parsed.peer}' but the message claims to be from '${claimed}'`]);
  }
  let expected: string;
  try {
    expected = subjectFor(message);
  } catch (error) {
    throw new DecodeError("bad_subject", [(error as Error).message], { cause: error });
  }
  if (expected !== subject) {
    throw new DecodeError("bad_subject", [`a ${message.type} message like this belongs on '${expected}', not '${subject}'`]);
  }
}
