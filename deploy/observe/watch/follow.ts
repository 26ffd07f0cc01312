/**
 * Follows an experiment read-only, as `pop watch` and `pop dashboard` show it: every stored
 * candidate, verdict, pair, evaluation, control event and dead letter from the start of its
 * stream and then live, the members' records and the coordinator's lease. Observer credentials are enough.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  admit,
  BUCKETS,
  followStream,
  kvmOf,
  memberKeys,
  recordOf,
  stateKeys,
  SCHEMAS,
  STREAMS,
  subjects,
  type Member,
  type Message,
  type MessageType,
} from "../../../protocol/mod.ts";

const MESSAGE_TYPES = Object.keys(SCHEMAS) as MessageType[];

/** Where followed messages and member records go. */
export interface FollowSink {
  /** A message that passed the consumers' admission rules, with the time it was made (or arrived). */
  message(m: Message, at: number): void;
  /** A member record under its bucket key; undefined once the process left. */
  member(key: string, record: Member | undefined, at: number): void;
}

/** A running follow: when the last message came, and how to stop. */
export interface Following {
  lastMessageAt(): number;
  /** Resolves once nothing has arrived for `quietMs` (caught up), or after `maxMs`. */
  caughtUp(quietMs?: number, maxMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** When a message was made, where it says; rates count from these, so a late start does not read as a burst. */
function timeOf(m: Message, fallback: number): number {
  if ("createdAt" in m && typeof m.createdAt === "number") return m.createdAt;
  if ("at" in m && typeof m.at === "number") return m.at;
  return fallback;
}

export async function followExperiment(nc: NatsConnection, experiment: string, sink: FollowSink): Promise<Following> {
  let last = Date.now();
  const streams: [string, string][] = [
    [STREAMS.candidates.name, subjects.all(experiment, "cand")],
    [STREAMS.verdicts.name, subjects.all(experiment, "verdict")],
    [STREAMS.pairs.name, subjects.all(experiment, "pair")],
    [STREAMS.evaluations.name, subjects.all(experiment, "eval")],
    [STREAMS.control.name, subjects.all(experiment, "ctl")],
    [STREAMS.dead.name, subjects.all(experiment, "dead")],
  ];
  const reads = await Promise.all(
    streams.map(([stream, filter]) =>
      followStream({
        nc,
        stream,
        filter,
        each: (m) => {
          last = Date.now();
          // The same admission every consumer applies: what it would refuse is not shown.
          const a = admit(m.subject, m.data, MESSAGE_TYPES);
          if (a.ok) sink.message(a.message, timeOf(a.message, last));
        },
      }),
    ),
  );
  // The coordinator's lease (who leads): shown as a message of type "lease".
  const state = await kvmOf(nc).open(BUCKETS.state);
  const leaseWatch = await state.watch({ key: stateKeys.lease(experiment) });
  void (async () => {
    for await (const e of leaseWatch) {
      try {
        const record = recordOf(e, "lease");
        if (record) sink.message(record, Date.now());
      } catch {
        // a record that does not decode is not shown
      }
    }
  })().catch(() => undefined);
  const members = await kvmOf(nc).open(BUCKETS.members);
  const memberWatch = await members.watch({ key: memberKeys.all(experiment) });
  void (async () => {
    for await (const e of memberWatch) {
      let record: Member | undefined;
      try {
        record = recordOf(e, "member");
      } catch {
        continue; // a record that does not decode is not shown
      }
      sink.member(e.key, record, Date.now());
    }
  })().catch(() => undefined);
  return {
    lastMessageAt: () => last,
    async caughtUp(quietMs = 1000, maxMs = 30_000) {
      const deadline = Date.now() + maxMs;
      while (Date.now() - last < quietMs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    },
    async stop() {
      memberWatch.stop();
      leaseWatch.stop();
      await Promise.all(reads.map((r) => r.close()));
    },
  };
}
