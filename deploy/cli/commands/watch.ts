/**
 * `pop watch`: a live view of a running experiment (members, the open iteration's progress with
 * totals and ETA, message rates, scores, dead letters), caught up from the streams so it can start
 * late; `--lines` prints one line per message instead, for scripts.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { admit, CRITERIA, HEADER, SCHEMAS, wildcards, type Message, type MessageType } from "../../../protocol/mod.ts";
import type { Flags } from "../args.ts";
import { connectNats, onShutdown } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { WatchState } from "../../observe/watch/state.ts";
import { renderWatch } from "../../observe/watch/render.ts";
import { followExperiment } from "../../observe/watch/follow.ts";

const MESSAGE_TYPES = Object.keys(SCHEMAS) as MessageType[];

export const watchHelp = `pop watch [options]

A live view of an experiment: each member's state (answering, judging, training step/total),
model version and heartbeat; the open iteration's answers, verdicts and pairs against what a
full iteration has, with rates and ETA; messages per second; the scores per iteration; the
latest dead letters with their reasons. It reads the streams from the start, so it can start
late; it only reads (observer credentials are enough).

  --experiment NAME    experiment                                           default: demo
  --once               catch up, print the view once and exit
  --lines              instead of the view, one line per message as it flows (prompts,
                       candidates, verdicts with labelled scores, pairs, evaluations, control
                       events, dead letters), from a plain subscription; '*' as the experiment
                       shows all of them
  --kinds LIST         with --lines, only these kinds: prompt,cand,verdict,pair,eval,ctl,dead

${NATS_OPTIONS_HELP}`;

const SHORT: Record<string, string> = { helpfulness: "help", correctness: "correct", coherence: "coherent", complexity: "complex", verbosity: "verbose" };

function summary(m: Message): string {
  switch (m.type) {
    case "prompt":
      return `${m.promptId}  "${m.question}"`;
    case "candidates":
      return `${m.promptId}  ${m.candidates.map((c) => JSON.stringify(c.text)).join(" | ")}`;
    case "verdict":
      return `${m.promptId}  on ${m.authors.join(", ")}: ${m.scores
        .map((s) => (s.likert ? CRITERIA.map((c) => `${SHORT[c] ?? c} ${s.likert![c].toFixed(1)}`).join(" ") : `abstained (${s.abstained})`))
        .join("  |  ")}`;
    case "pair":
      return `${m.promptId}  chosen ${m.chosen.author} ${JSON.stringify(m.chosen.text)} (score ${m.chosen.score.toFixed(2)})  rejected ${m.rejected.author} ${JSON.stringify(m.rejected.text)} (score ${m.rejected.score.toFixed(2)})`;
    case "evaluation":
      return `average ${(m.average * 100).toFixed(1)}  ${Object.entries(m.suites)
        .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}`)
        .join(", ")}`;
    case "control":
      return m.event;
    case "dead_letter":
      return `${m.reason}: ${m.detail}  (from ${m.subject})`;
    default:
      return m.type;
  }
}

export async function runWatch(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment") ?? "demo";
  const lines = flags.bool("lines");
  const once = flags.bool("once");
  const kinds = flags
    .string("kinds")
    ?.split(",")
    .map((k) => k.trim());
  const nats = flags.nats();
  flags.rejectUnknown();
  const nc = await connectNats(nats, "pop-watch");
  if (lines) return watchLines(nc, experiment, kinds, nats.servers);
  return watchView(nc, experiment, once);
}

async function watchLines(nc: NatsConnection, experiment: string, kinds: string[] | undefined, server: string): Promise<void> {
  const sub = nc.subscribe(wildcards.experiment(experiment));
  onShutdown(async () => {
    sub.unsubscribe();
    await nc.close();
  });
  process.stderr.write(`watching ${wildcards.experiment(experiment)} on ${server} (Ctrl-C to stop)\n`);
  for await (const msg of sub) {
    const kind = msg.subject.split(".")[2] ?? "";
    if (kinds && !kinds.includes(kind)) continue;
    const h = msg.headers;
    const who = h?.get(HEADER.peer) ?? "";
    const it = h?.get(HEADER.iteration) ?? "";
    // The same policy every consumer applies: a message it would refuse is shown as refused, with why.
    const a = admit(msg.subject, msg.data, MESSAGE_TYPES);
    const text = a.ok ? summary(a.message) : `(refused, ${a.reason}: ${a.detail})`;
    const t = new Date().toISOString().slice(11, 23);
    process.stdout.write(`${t}  ${(h?.get(HEADER.type) ?? kind).padEnd(26)} it=${it.padEnd(3)} ${who.padEnd(10)} ${text.slice(0, 300)}\n`);
  }
}

async function watchView(nc: NatsConnection, experiment: string, once: boolean): Promise<void> {
  const state = new WatchState(experiment);
  const following = await followExperiment(nc, experiment, {
    message: (m, at) => state.add(m, at),
    member: (key, record) => state.member(key, record),
  });
  const stop = async () => {
    await following.stop();
    await nc.close();
  };
  if (once) {
    await following.caughtUp();
    process.stdout.write(renderWatch(state, Date.now()).join("\n") + "\n");
    await stop();
    return;
  }
  onShutdown(stop);
  const tty = process.stdout.isTTY;
  // A terminal gets the view redrawn in place every second; a file or pipe a copy every 10 s.
  for (;;) {
    const view = renderWatch(state, Date.now()).join("\n");
    process.stdout.write(tty ? `\x1b[H\x1b[2J${view}\n(Ctrl-C to stop)\n` : `${view}\n\n`);
    await new Promise((r) => setTimeout(r, tty ? 1000 : 10_000));
  }
}
