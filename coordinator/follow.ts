/**
 * Following a stream from its start under the admission policy (protocol/admit.ts): each
 * admitted message goes to the handler; each refused one is dead-lettered with its reason and
 * logged, never counted. The coordinator replays its streams this way on every start.
 */
import { DeliverPolicy, type Consumer, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { admit, deadLetter, jetStreamOf, retrying, withTimeout, type MessageOf, type MessageType, type Roster } from "../protocol/mod.ts";

export interface FollowOptions<K extends MessageType> {
  nc: NatsConnection;
  stream: string;
  filter: string;
  types: K[];
  /** Who may speak; others are dead-lettered as not_member. */
  roster?: Roster;
  /** The consumer name dead letters carry. */
  as: string;
  log: Logger;
  handle: (message: MessageOf<K>) => Promise<void> | void;
}

/** A running follower. */
export interface Follower {
  /** Stops following. */
  close(): Promise<void>;
}

/** How long a follower may make no progress while its consumer says messages are pending. */
const STALL_MS = 15_000;

/**
 * Starts following; resolves once the consumer exists. An ordered consumer lives on one server:
 * when that node dies the client is meant to recreate it, but on nats-server 2.9 it was seen
 * to stall for minutes. So a watchdog checks a follower that has made no progress for a while:
 * if its consumer is gone or reports pending messages, the follower starts a new one after the
 * last message it handled.
 */
export async function followAdmitted<K extends MessageType>(o: FollowOptions<K>): Promise<Follower> {
  const js = jetStreamOf(o.nc);
  let lastSeq = 0;
  let progressAt = Date.now();
  let closed = false;
  let current: { consumer: Consumer; messages: ConsumerMessages } | undefined;

  const open = async () => {
    // While a cluster re-elects leaders these calls were seen to hang without their own timeout.
    const consumer = await withTimeout(js.consumers.get(o.stream, lastSeq
      ? { filter_subjects: o.filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 }
      : { filter_subjects: o.filter, deliver_policy: DeliverPolicy.All }), 8_000, "creating a stream consumer");
    const messages = await withTimeout(consumer.consume({ expires: 5000 }), 8_000, "starting to consume");
    current = { consumer, messages };
    (async () => {
      for await (const m of messages) {
        // A restarted follower may see again what it handled; handlers are idempotent, but skip it.
        if (m.info.streamSequence <= lastSeq) continue;
        await handleOne(m);
        lastSeq = m.info.streamSequence;
        progressAt = Date.now();
      }
    })().catch((error) => o.log.error({ err: error, stream: o.stream }, "stream follower ended"));
  };

  const handleOne = async (m: JsMsg) => {
    const a = admit(m.subject, m.data, o.types, o.roster);
    if (!a.ok) {
      // This consumer does not redeliver, so a dead letter that fails to publish is tried again here.
      for (let attempt = 1; ; attempt++) {
        try {
          await deadLetter(js, m, a, o.as);
          break;
        } catch (error) {
          if (attempt >= 5) {
            o.log.error({ err: error, subject: m.subject }, "could not dead-letter a message; it is not counted");
            break;
          }
          await new Promise((r) => setTimeout(r, 1000 * attempt));
        }
      }
      o.log.warn({ subject: m.subject, reason: a.reason, detail: a.detail }, "not counted: dead-lettered");
      return;
    }
    await o.handle(a.message);
  };

  await retrying(`following ${o.filter} on ${o.stream}`, open, o.log);
  let checking = false;
  const watchdog = setInterval(async () => {
    if (closed || checking || Date.now() - progressAt < STALL_MS) return;
    checking = true;
    try {
      const pending = await current!.consumer.info(false).then((i) => i.num_pending, () => Infinity);
      if (pending > 0 && !closed) {
        o.log.warn({ stream: o.stream, filter: o.filter, afterSeq: lastSeq }, "stream follower stalled; starting a new consumer after the last message handled");
        await current!.messages.close().catch(() => undefined);
        await retrying(`following ${o.filter} on ${o.stream}`, open, o.log);
      }
      progressAt = Date.now();
    } catch (error) {
      o.log.warn({ err: error, stream: o.stream }, "could not restart a stalled follower; will try again");
    } finally {
      checking = false;
    }
  }, STALL_MS / 3);
  watchdog.unref();
  return {
    async close() {
      closed = true;
      clearInterval(watchdog);
      await current?.messages.close().catch(() => undefined);
    },
  };
}
