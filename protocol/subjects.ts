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
import { NAME_PATTERN, type ControlEventName } from "./schemas.ts";

export const SUBJECT_ROOT = "pop";

export type SubjectKind = "prompt" | "cand" | "verdict" | "pair" | "eval" | "ctl" | "dead";

/** Control events a member publishes about itself: their subject ends with the peer. */
export const PEER_EVENTS = ["training_done", "model_published", "peer_joined", "peer_left", "gave_up"] as const satisfies readonly ControlEventName[];
const PEER_EVENT_SET: ReadonlySet<ControlEventName> = new Set(PEER_EVENTS);
const EVENTS: ReadonlySet<string> = new Set<ControlEventName>([...PEER_EVENTS, "iteration_opened", "iteration_closed", "experiment_done"]);

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

function name(value: string, what: string): string {
  if (!NAME_PATTERN.test(value)) {
    throw new SubjectError(`${what} '${value}' is not a valid name: use 1-64 chars of a-z, 0-9, '_' or '-', starting with a letter or digit`);
  }
  return value;
}

function iter(value: number): string {
  if (!Number.isInteger(value) || value < 0) throw new SubjectError(`iteration must be a non-negative integer, got ${value}`);
  return String(value);
}

/** Subject builders. Each validates its tokens, so no subject with a stray '.' or '*' is ever built. */
export const subjects = {
  prompt: (exp: string, iteration: number) => `${SUBJECT_ROOT}.${name(exp, "experiment")}.prompt.${iter(iteration)}`,
  candidates: (exp: string, iteration: number, author: string) =>
    `${SUBJECT_ROOT}.${name(exp, "experiment")}.cand.${iter(iteration)}.${name(author, "author")}`,
  verdict: (exp: string, iteration: number, judge: string) =>
    `${SUBJECT_ROOT}.${name(exp, "experiment")}.verdict.${iter(iteration)}.${name(judge, "judge")}`,
  pair: (exp: string, iteration: number) => `${SUBJECT_ROOT}.${name(exp, "experiment")}.pair.${iter(iteration)}`,
  evaluation: (exp: string, iteration: number, peer: string) =>
    `${SUBJECT_ROOT}.${name(exp, "experiment")}.eval.${iter(iteration)}.${name(peer, "peer")}`,
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
  all: (exp: string, kind: SubjectKind) => `${SUBJECT_ROOT}.${exp === "*" ? "*" : name(exp, "experiment")}.${kind}.>`,
  /** Wildcard for one iteration of a kind. */
  iteration: (exp: string, kind: "prompt" | "cand" | "verdict" | "pair" | "eval", iteration: number) =>
    kind === "prompt" || kind === "pair"
      ? `${SUBJECT_ROOT}.${name(exp, "experiment")}.${kind}.${iter(iteration)}`
      : `${SUBJECT_ROOT}.${name(exp, "experiment")}.${kind}.${iter(iteration)}.*`,
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
