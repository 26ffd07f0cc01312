/** `pop watch`: print the message flow of an experiment as it happens, one line per message. */
import { admit, HEADER, SCHEMAS, SUBJECT_ROOT, type Message, type MessageType } from "../../protocol/mod.ts";

const MESSAGE_TYPES = Object.keys(SCHEMAS) as MessageType[];
import type { Flags } from "../args.ts";
import { connectNats, onShutdown } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../nats-options.ts";

export const watchHelp = `pop watch [options]

Prints every message of an experiment as it flows (prompts, candidates, verdicts, pairs,
evaluations, control events, dead letters), one line each, from a plain NATS subscription.
The same flows are visible with the nats CLI: nats sub --headers-only 'pop.<experiment>.>'

  --experiment NAME    experiment, or '*' for all                           default: demo
  --kinds LIST         only these kinds: prompt,cand,verdict,pair,eval,ctl,dead

${NATS_OPTIONS_HELP}`;

function summary(m: Message): string {
  switch (m.type) {
    case "prompt":
      return `${m.promptId}  "${m.question}"`;
    case "candidates":
      return `${m.promptId}  ${m.candidates.map((c) => JSON.stringify(c.text)).join(" | ")}`;
    case "verdict":
      return `${m.promptId}  on ${m.author}: ${m.scores.map((s) => (s.likert ? Object.values(s.likert).map((x) => x.toFixed(1)).join("/") : `abstained (${s.abstained})`)).join("  ")}`;
    case "pair":
      return `${m.promptId}  chosen ${m.chosen.author} ${JSON.stringify(m.chosen.text)} (${m.chosen.score.toFixed(2)})  rejected ${m.rejected.author} ${JSON.stringify(m.rejected.text)} (${m.rejected.score.toFixed(2)})`;
    case "evaluation":
      return `average ${(m.average * 100).toFixed(1)}  ${Object.entries(m.suites).map(([k, v]) => `${k} ${(v * 100).toFixed(0)}`).join(", ")}`;
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
  const kinds = flags.string("kinds")?.split(",").map((k) => k.trim());
  const nats = flags.nats();
  const server = nats.servers;
  flags.rejectUnknown();
  const nc = await connectNats(nats, "pop-watch");
  const sub = nc.subscribe(`${SUBJECT_ROOT}.${experiment}.>`);
  onShutdown(async () => {
    sub.unsubscribe();
    await nc.close();
  });
  process.stderr.write(`watching ${SUBJECT_ROOT}.${experiment}.> on ${server} (Ctrl-C to stop)\n`);
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
    process.stdout.write(`${t}  ${(h?.get(HEADER.type) ?? kind).padEnd(26)} it=${it.padEnd(3)} ${who.padEnd(10)} ${text.slice(0, 200)}\n`);
  }
}
