/**
 * The ordered-follow mode of the stream reader: a stream followed from its start (and then live)
 * through an ordered consumer, each message handled before the next. The coordinator replays its
 * streams this way on every start; `pop watch` and the dashboard show an experiment this way.
 *
 * An ordered consumer lives on one server: when that node dies the client is meant to recreate
 * it, but on nats-server 2.9 it was seen to stall for minutes; and it reads that server's replica
 * of the stream, which may lag the leader for good. The stall watchdog then reads what was missed
 * from the stream leader and starts a new consumer just after the last message handled (a
 * follower's only state is that sequence).
 */
import type { Consumer } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { admit, deadLetter, type Check, type Roster } from "../admit.ts";
import type { FenceView } from "../fence.ts";
import { jetStreamOf } from "../jetstream.ts";
import { retrying } from "../retry.ts";
import type { MessageOf, MessageType } from "../schemas.ts";
import { withTimeout } from "../timeout.ts";
import { LeaderReader } from "./leader.ts";
import { silent, type ReaderLog } from "./log.ts";
import type { StreamMessage } from "./message.ts";
import { CALL_MS, orderedConsumer } from "./ordered.ts";
import { Pull } from "./pull.ts";

/** A running follower. */
export interface Follower {
  /** Stops following. */
  close(): Promise<void>;
}

/** Options of {@link followStream}. */
export interface FollowStreamOptions {
  nc: NatsConnection;
  stream: string;
  filter: string;
  log?: ReaderLog;
  /**
   * Each message once, in stream order. A handler that throws ends this consumer's reading; the
   * watchdog's next consumer (messages pending) starts again at that message.
   */
  each: (m: StreamMessage) => Promise<void> | void;
  /** The watchdog's stall time; default its STALL_MS (tests shorten it). */
  stallMs?: number;
  /**
   * Where each consumer comes from: default an ordered consumer of the filter after `afterSeq`.
   * Tests pass one that reads a replica which lags.
   */
  consumerAfter?: (afterSeq: number) => Promise<Consumer>;
}

/**
 * Starts following; resolves once the consumer exists (creating it is retried while that can help).
 *
 * A follower quiet for the stall time asks the stream leader whether the stream holds a message
 * on its filter after the last one it handled. If so, it reads those from the leader by sequence
 * and hands them to the handler itself, then starts a new consumer after them. Reading from the
 * leader is what recovers: a new consumer may be placed on the same stale replica (nats-server
 * chooses, and a replica 2.9.10 failed to resync stays stale); dropping that replica
 * (`STREAM.PEER.REMOVE`) finds no other node on a three-node cluster with one replica per site,
 * and changes the stream for every reader to cure one (docs/sites.md).
 */
export async function followStream(o: FollowStreamOptions): Promise<Follower> {
  const js = jetStreamOf(o.nc);
  const log = o.log ?? silent;
  const leader = new LeaderReader(o.nc, o.stream, o.filter);
  const consumerAfter = o.consumerAfter ?? ((afterSeq: number) => orderedConsumer(js, o.stream, o.filter, afterSeq));
  // The last message handled: a new consumer starts after it.
  let lastSeq = 0;
  let stopped = false;
  // The consumer's messages and those read from the leader are handled one at a time, in order.
  let turn: Promise<unknown> = Promise.resolve();
  // A handler at work is not a stall, however long it takes.
  let handling = 0;
  /** Handles a message unless it was handled already; says whether it was. */
  const handle = (m: StreamMessage): Promise<boolean> => {
    const run = turn.then(async () => {
      // A restarted follower may see again what it handled; handlers are idempotent, but skip it.
      if (m.info.streamSequence <= lastSeq) return false;
      handling++;
      try {
        await o.each(m);
      } finally {
        handling--;
      }
      lastSeq = m.info.streamSequence;
      return true;
    });
    turn = run.catch(() => undefined);
    return run;
  };
  /** Hands the handler what the leader holds after the last message handled. */
  const catchUp = async () => {
    const from = lastSeq;
    let read = 0;
    for (let m = await leader.nextAfter(lastSeq); m && !stopped; m = await leader.nextAfter(lastSeq)) {
      if (await handle(m)) read++;
    }
    if (read) {
      log.warn(
        { stream: o.stream, filter: o.filter, handledThrough: from, readFromLeader: read, leaderThrough: lastSeq },
        "this follower's consumer missed messages the stream leader holds (its replica lags); read them from the leader",
      );
    }
  };
  const openConsumer = () =>
    retrying(
      `following ${o.filter} on ${o.stream}`,
      async () => {
        const consumer = await consumerAfter(lastSeq);
        return { consumer, messages: await withTimeout(consumer.consume({ expires: 5000 }), CALL_MS, "starting to consume") };
      },
      log,
    );
  let opened = false;
  const pull = await Pull.start({
    // The first consumer reads from the start; each later one (the watchdog's) first catches up.
    open: async () => {
      if (opened) await catchUp();
      opened = true;
      return openConsumer();
    },
    each: async (m) => void (await handle(m)),
    revive: true,
    busy: () => handling > 0,
    ended: (error) => log.error({ err: error, stream: o.stream }, "stream follower ended"),
    waiting: async () => ((await leader.nextAfter(lastSeq)) ? 1 : 0),
    stallMs: o.stallMs,
    log,
    about: () => ({ stream: o.stream, filter: o.filter, afterSeq: lastSeq }),
    remedy: "reading what it missed from the stream leader, then starting a new consumer after it",
  });
  return {
    close: () => {
      stopped = true;
      return pull.stop();
    },
  };
}

/** Options of {@link followAdmitted}. */
export interface FollowOptions<K extends MessageType> {
  nc: NatsConnection;
  stream: string;
  filter: string;
  types: K[];
  /** Who may speak; others are dead-lettered as not_member. */
  roster?: Roster;
  /** The reader's own consistency check; what fails it is dead-lettered as invalid. */
  check?: Check;
  /** The lease's view (protocol/fence.ts): stale coordinator messages are dead-lettered as stale_leader. */
  fence?: FenceView;
  /** The consumer name dead letters carry. */
  deadLetterAs: string;
  log: ReaderLog;
  handle: (message: MessageOf<K>) => Promise<void> | void;
}

/** How long a follower keeps trying to store a dead letter (its consumer does not redeliver). */
const DEAD_LETTER_RETRY_MS = 15_000;

/**
 * Follows a stream under the admission policy (protocol/admit.ts): each admitted message goes to
 * the handler; each refused one is dead-lettered with its reason and logged, never counted.
 */
export function followAdmitted<K extends MessageType>(o: FollowOptions<K>): Promise<Follower> {
  const js = jetStreamOf(o.nc);
  return followStream({
    nc: o.nc,
    stream: o.stream,
    filter: o.filter,
    log: o.log,
    each: async (m) => {
      await o.fence?.see(m);
      const a = admit(m.subject, m.data, o.types, o.roster, o.check, o.fence && ((message) => o.fence!.judge(message, m)));
      if (a.ok) return o.handle(a.message);
      // This consumer does not redeliver, so a dead letter that fails to publish is tried again here.
      await retrying(`dead-lettering ${m.subject}`, () => deadLetter(js, m, a, o.deadLetterAs), o.log, DEAD_LETTER_RETRY_MS).catch((error: unknown) =>
        o.log.error({ err: error, subject: m.subject }, "could not dead-letter a message; it is not counted"),
      );
      o.log.warn({ subject: m.subject, reason: a.reason, detail: a.detail }, "not counted: dead-lettered");
    },
  });
}
