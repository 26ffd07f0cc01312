/**
 * Subject names: one builder and one parser. The identity of whoever speaks (the author of
 * candidates, the judge of a verdict, the peer of an event) is the last subject token, so NATS
 * permissions can bind who may publish what (e.g. allow `pop.*.cand.*.alice` for alice only).
 *
 *   pop.<exp>.prompt.<iter>              prompts (coordinator)
 *   pop.<exp>.cand.<iter>.<author>       candidate batches
 *   pop.<exp>.verdict.<iter>.<judge>     verdicts (one per judge and prompt, covering the authors it judged)
 *   pop.<exp>.pair.<iter>                preference pairs (coordinator)
 *   pop.<exp>.eval.<iter>.<peer>         evaluation results
 *   pop.<exp>.ctl.<event>[.<peer>]       control events
 *   pop.<exp>.dead.<reason>              dead letters
 */
import { SubjectError } from "./errors.ts";

export const SUBJECT_ROOT = "pop";

/** Lower-case name usable as one NATS subject token: peers, experiments, instances, pools. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** {@link NAME_PATTERN} in words, for error messages. */
export const NAME_RULE = "1-64 chars of a-z, 0-9, '_' or '-', starting with a letter or digit";

/** Whether `value` is a valid name (one subject or key token). */
export const isName = (value: string): boolean => NAME_PATTERN.test(value);

export type SubjectKind = "prompt" | "cand" | "verdict" | "pair" | "eval" | "ctl" | "dead";

/** Control events a member publishes about itself: their subject ends with the peer. */
export const PEER_EVENTS = ["training_done", "model_published", "peer_joined", "peer_left", "gave_up"] as const;
/** Control events only the coordinator publishes: their subject has no peer. */
export const COORDINATOR_EVENTS = ["iteration_opened", "iteration_closed", "experiment_done"] as const;
/** Every control event (schemas.ts gives each its body). */
export const CONTROL_EVENTS = [...COORDINATOR_EVENTS, ...PEER_EVENTS] as const;
export type ControlEventName = (typeof CONTROL_EVENTS)[number];

const PEER_EVENT_SET: ReadonlySet<ControlEventName> = new Set(PEER_EVENTS);
const EVENTS: ReadonlySet<string> = new Set<ControlEventName>(CONTROL_EVENTS);

/** What a subject says, once parsed. */
export interface ParsedSubject {
  experiment: string;
  kind: SubjectKind;
  iteration?: number;
  /** The speaker's identity for kinds that carry one. */
  peer?: string;
  event?: ControlEventName;
  reason?: string;
}

/** `value` when it is a valid name; else a {@link SubjectError} naming `what` it was meant to be. */
export function checkName(value: string, what: string): string {
  if (!isName(value)) throw new SubjectError(`${what} '${value}' is not a valid name: use ${NAME_RULE}`);
  return value;
}

const name = checkName;

function iter(value: number): string {
  if (!Number.isInteger(value) || value < 0) throw new SubjectError(`iteration must be a non-negative integer, got ${value}`);
  return String(value);
}

type IterationKind = "prompt" | "cand" | "verdict" | "pair" | "eval";
/** Kinds whose subject ends with the speaker. */
type SpokenKind = "cand" | "verdict" | "eval";

/** An experiment token of a wildcard: a valid name, or `*` for every experiment. */
const anyExp = (exp: string) => (exp === "*" ? "*" : name(exp, "experiment"));
/** A peer token of a wildcard: a valid name, or `*` for every peer. */
const anyPeer = (peer: string) => (peer === "*" ? "*" : name(peer, "peer"));

/** Subject builders. Each validates its tokens, so no subject with a stray '.' or '*' is ever built. */
export const subjects = {
  prompt: (exp: string, iteration: number) => `${SUBJECT_ROOT}.${name(exp, "experiment")}.prompt.${iter(iteration)}`,
  candidates: (exp: string, iteration: number, author: string) =>
    `${SUBJECT_ROOT}.${name(exp, "experiment")}.cand.${iter(iteration)}.${name(author, "author")}`,
  verdict: (exp: string, iteration: number, judge: string) => `${SUBJECT_ROOT}.${name(exp, "experiment")}.verdict.${iter(iteration)}.${name(judge, "judge")}`,
  pair: (exp: string, iteration: number) => `${SUBJECT_ROOT}.${name(exp, "experiment")}.pair.${iter(iteration)}`,
  evaluation: (exp: string, iteration: number, peer: string) => `${SUBJECT_ROOT}.${name(exp, "experiment")}.eval.${iter(iteration)}.${name(peer, "peer")}`,
  control: (exp: string, event: ControlEventName, peer?: string) => {
    const base = `${SUBJECT_ROOT}.${name(exp, "experiment")}.ctl.${event}`;
    if (PEER_EVENT_SET.has(event)) {
      if (!peer) throw new SubjectError(`control event '${event}' needs a peer`);
      return `${base}.${name(peer, "peer")}`;
    }
    return base;
  },
  dead: (exp: string, reason: string) => `${SUBJECT_ROOT}.${name(exp, "experiment")}.dead.${name(reason.replace(/_/g, "-"), "reason")}`,
  /** Wildcard for every subject of one kind in one experiment (`*` for all experiments). */
  all: (exp: string, kind: SubjectKind) => wildcards.kind(exp, kind),
  /** Wildcard for one iteration of a kind. */
  iteration: (exp: string, kind: IterationKind, iteration: number) =>
    kind === "prompt" || kind === "pair"
      ? `${SUBJECT_ROOT}.${name(exp, "experiment")}.${kind}.${iter(iteration)}`
      : `${SUBJECT_ROOT}.${name(exp, "experiment")}.${kind}.${iter(iteration)}.*`,
};

/**
 * Wildcards over protocol subjects, for stream definitions and permission lists
 * (deploy/ops/permissions.ts). `exp` may be `*` for every experiment; the builders in
 * {@link subjects} refuse wildcards, so these are the only place one is written.
 */
export const wildcards = {
  /** Every protocol subject. */
  everything: `${SUBJECT_ROOT}.>`,
  /** Every subject of one experiment. */
  experiment: (exp: string) => `${SUBJECT_ROOT}.${anyExp(exp)}.>`,
  /** Every subject of a kind (the same as {@link subjects.all}). */
  kind: (exp: string, kind: SubjectKind) => `${SUBJECT_ROOT}.${anyExp(exp)}.${kind}.>`,
  /** A kind in any iteration, from any speaker: `pop.<exp>.prompt.*`, `pop.<exp>.cand.*.*`. */
  anyIteration: (exp: string, kind: IterationKind) => `${SUBJECT_ROOT}.${anyExp(exp)}.${kind}.*${kind === "prompt" || kind === "pair" ? "" : ".*"}`,
  /** What one speaker (`*`: any) says of a kind in any iteration: `pop.<exp>.cand.*.<peer>`. */
  spokenBy: (exp: string, kind: SpokenKind, peer: string) => `${SUBJECT_ROOT}.${anyExp(exp)}.${kind}.*.${anyPeer(peer)}`,
  /** A control event; a peer event takes the peer (`*`: any). */
  control: (exp: string, event: ControlEventName, peer?: string) =>
    `${SUBJECT_ROOT}.${anyExp(exp)}.ctl.${event}${PEER_EVENT_SET.has(event) ? `.${anyPeer(peer ?? "*")}` : ""}`,
  /** Dead letters of any reason. */
  dead: (exp: string) => `${SUBJECT_ROOT}.${anyExp(exp)}.dead.*`,
};

/** Stream operations of the JetStream API that permission lists name. */
export type StreamOp = "INFO" | "CREATE" | "UPDATE" | "DELETE" | "PURGE" | "MSG.GET" | "MSG.DELETE";
/** Consumer operations of the JetStream API that permission lists name. */
export type ConsumerOp = "CREATE" | "INFO" | "DELETE" | "MSG.NEXT" | "LEADER.STEPDOWN";

const JS_API = "$JS.API";

/**
 * NATS's own subjects under JetStream, KV buckets and object stores (nats.js v3 against
 * nats-server 2.9), for permission lists and direct reads. Arguments may be `*` or `>`.
 */
export const natsSubjects = {
  /** The prefix of every JetStream API request. */
  api: JS_API,
  /** Every KV write. */
  allKv: "$KV.>",
  /** Every object store write. */
  allObjects: "$O.>",
  /** Every ack of every consumer. */
  allAcks: "$JS.ACK.>",
  /** Every client inbox of the account (nats.js's default prefix is `_INBOX`). */
  inboxes: "_INBOX.>",
  /**
   * The inbox prefix of the client holding nkey `publicKey` (`U…`, one token): every reply,
   * push delivery and pull batch of that client comes back under it, so the server can let
   * each identity subscribe to its own replies only. Still inside {@link natsSubjects.inboxes}.
   */
  privateInbox: (publicKey: string) => `_INBOX.${publicKey}`,
  /** The account's JetStream info request. */
  info: `${JS_API}.INFO`,
  stream: (op: StreamOp, stream: string) => `${JS_API}.STREAM.${op}.${stream}`,
  /** A consumer request; CREATE carries the filter subject as its last tokens. */
  consumer: (op: ConsumerOp, stream: string, consumer: string, filter?: string) =>
    `${JS_API}.CONSUMER.${op}.${stream}.${consumer}${op === "CREATE" && filter ? `.${filter}` : ""}`,
  /** A direct get of the last message on `subject` (the subject is in the request's subject). */
  directGet: (stream: string, subject: string) => `${JS_API}.DIRECT.GET.${stream}.${subject}`,
  /** Acks, naks, terms and progress of a consumer's deliveries. */
  acks: (stream: string, consumer: string) => `$JS.ACK.${stream}.${consumer}.>`,
  /** Flow control replies of a pushed consumer. */
  flowControl: (stream: string) => `$JS.FC.${stream}.>`,
  /** The stream behind a KV bucket. */
  kvStream: (bucket: string) => `KV_${bucket}`,
  /** A KV key's subject (a write is a publish to it). */
  kv: (bucket: string, key: string) => `$KV.${bucket}.${key}`,
  /** The stream behind an object store. */
  objectStream: (store: string) => `OBJ_${store}`,
  /** An object's chunks, by the object's nuid. */
  objectChunks: (store: string, nuid: string) => `$O.${store}.C.${nuid}`,
  /** Object metadata, by the object's encoded name. */
  objectMeta: (store: string, encodedName: string) => `$O.${store}.M.${encodedName}`,
  /**
   * The subject a client in JetStream domain `domain` sends instead of `subject`: API requests go
   * to `$JS.<domain>.API.…`, KV writes to `$JS.<domain>.API.$KV.…`; undefined for every other
   * subject (acks, flow control, object chunks, protocol subjects keep their names).
   */
  inDomain: (subject: string, domain: string): string | undefined => {
    const api = `$JS.${domain}.API`;
    if (subject === JS_API || subject.startsWith(`${JS_API}.`)) return api + subject.slice(JS_API.length);
    if (subject.startsWith("$KV.")) return `${api}.${subject}`;
    return undefined;
  },
};

/** Parses any protocol subject; throws {@link SubjectError} saying what is wrong. */
export function parseSubject(subject: string): ParsedSubject {
  const t = subject.split(".");
  if (t[0] !== SUBJECT_ROOT || t.length < 3) throw new SubjectError(`'${subject}' is not a PoP subject (expected '${SUBJECT_ROOT}.<experiment>.<kind>...')`);
  const experiment = name(t[1]!, "experiment");
  const kind = t[2] as SubjectKind;
  const need = (n: number) => {
    if (t.length !== n) throw new SubjectError(`'${subject}': a '${kind}' subject has ${n} tokens, this one has ${t.length}`);
  };
  const iteration = () => {
    const s = t[3]!;
    if (!/^(0|[1-9][0-9]{0,6})$/.test(s)) throw new SubjectError(`'${subject}': iteration token '${s}' is not a number`);
    return Number(s);
  };
  switch (kind) {
    case "prompt":
    case "pair":
      need(4);
      return { experiment, kind, iteration: iteration() };
    case "cand":
    case "verdict":
    case "eval":
      need(5);
      return { experiment, kind, iteration: iteration(), peer: name(t[4]!, "peer") };
    case "ctl": {
      const event = t[3] ?? "";
      if (!EVENTS.has(event)) throw new SubjectError(`'${subject}': unknown control event '${event}'`);
      const ev = event as ControlEventName;
      if (PEER_EVENT_SET.has(ev)) {
        need(5);
        return { experiment, kind, event: ev, peer: name(t[4]!, "peer") };
      }
      need(4);
      return { experiment, kind, event: ev };
    }
    case "dead":
      need(4);
      return { experiment, kind, reason: t[3] };
    default:
      throw new SubjectError(`'${subject}': unknown kind '${t[2]}'`);
  }
}
