/**
 * The work-queue mode of the stream reader: a durable consumer read safely. Every delivery is decoded, validated and checked against
 * its subject; what fails goes to the dead-letter stream with the reason and its original
 * bytes, is terminated (never redelivered forever), and the inbox carries on. Handlers receive
 * batches: whatever accumulated while the previous batch was processed, so slow model work
 * naturally batches without holding anything back.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { admit, deadLetter, type Roster } from "../admit.ts";
import type { FenceView } from "../fence.ts";
import { jetStreamOf } from "../jetstream.ts";
import { backoffMs, redeliveryDelay } from "../retry.ts";
import type { DeadLetter, MessageOf, MessageType } from "../schemas.ts";
import { MAX_DELIVER, openManager, type ConsumerSpec } from "../topology.ts";
import { DurableLag } from "./durable-lag.ts";
import { Durable, Unsettled, isConsumerGone } from "./durable.ts";
import { silent, type ReaderLog } from "./log.ts";
import { Pull } from "./pull.ts";

/** The longest a delivery waits for redelivery when the lease could not be read to admit it. */
const LEASE_RETRY_MAX_MS = 10_000;

/** One valid delivery handed to a handler. */
export interface Delivery<T> {
  message: T;
  subject: string;
  /** 1 on first delivery. */
  deliveries: number;
  streamSeq: number;
}

/** What becomes of a delivery: acked, handed back for later, or dead-lettered with why. */
export type Decided = "ack" | { nak: number } | { dead: string; reason?: DeadLetter["reason"] };

/** What a handler decides for each delivery of its batch (default: ack), now or {@link Later}. */
export type Outcome = Decided | Later;

/**
 * Decided later: the delivery stays unacknowledged (kept alive like work in progress) until the
 * promise gives its outcome, while the inbox goes on with other batches. A handler that gathers
 * deliveries before acting on them (a judge waiting for every author of a prompt) uses it; a
 * rejected promise counts as a failed handler for that delivery. On stop it is handed back.
 */
export interface Later {
  later: Promise<Decided>;
}

/** Called with one or more valid deliveries; returns an outcome per delivery, or throws. */
export type BatchHandler<T> = (batch: Delivery<T>[], signal: AbortSignal) => Promise<Outcome[] | void>;

export interface InboxOptions<K extends MessageType> {
  spec: ConsumerSpec;
  /** The message types this consumer accepts; any other type is dead-lettered as invalid. */
  types: K[];
  handler: BatchHandler<MessageOf<K>>;
  /** Largest batch handed to the handler. Default 32. */
  batchSize?: number;
  /** Pull expiry; short values recover faster from a lost consumer leader. Default 5000. */
  expiresMs?: number;
  /** How long the inbox may make no progress before its stall watchdog looks (default its STALL_MS); short in tests. */
  stallMs?: number;
  /** Who may speak, per message (see protocol/admit.ts); speakers off the roster are dead-lettered. */
  roster?: Roster;
  /** The lease's view (protocol/fence.ts): stale coordinator messages are dead-lettered as stale_leader. */
  fence?: FenceView;
  log?: ReaderLog;
  /**
   * Called once a valid delivery has gone to the dead letters because its handling failed for
   * good (the handler's `dead` outcome or its last retry), so that others can stop waiting for
   * the work; not for messages refused at admission. Its failure is logged, never retried.
   */
  gaveUp?: (message: MessageOf<K>, reason: DeadLetter["reason"], detail: string) => Promise<void>;
  /**
   * Deliveries this reader has nothing to do with, told by their subject alone: acked unread,
   * neither decoded nor validated nor handed to the handler (a judge's own candidate batches:
   * a third of what its consumer brings at three members, on a subject only it may publish to).
   */
  skip?: (subject: string) => boolean;
}

/** A running inbox. */
export interface Inbox {
  /**
   * Stops pulling. Messages waiting and the batch in progress are nak'ed for redelivery (to this
   * peer's other processes, or to this one after a restart) once this inbox's last pull requests
   * have expired (`expiresMs` + 0.5 s); a late result of the aborted handler is ignored. Waits at
   * most `graceMs` (default 2000) for the handler to return.
   */
  stop(graceMs?: number): Promise<void>;
  /** Resolves when the inbox has stopped (after stop() or a fatal error). */
  done: Promise<void>;
  stats: { handled: number; dead: number; redelivered: number };
  /** Milliseconds since this inbox last received or finished anything; 0 while it holds work. */
  idleMs(): number;
}

/** Starts reading a durable consumer (creating it if needed) and handing valid batches to the handler. */
export async function startInbox<K extends MessageType>(nc: NatsConnection, options: InboxOptions<K>): Promise<Inbox> {
  const js = jetStreamOf(nc);
  const jsm = await openManager(nc);
  const log = options.log ?? silent;
  const durable = await Durable.open(js, jsm, options.spec, log);
  const batchSize = options.batchSize ?? 32;
  const expiresMs = options.expiresMs ?? 5000;
  // Work seen (a delivery, a batch done), apart from the stall watchdog's own bookkeeping.
  let lastActivity = Date.now();
  // What a stopping inbox hands back is redelivered only once its own pull requests have expired:
  // the server (2.9) would deliver it at once to one of those, whose subscription is gone, and
  // the message would then wait out a whole ack_wait before anyone saw it again.
  const handBack = (m: JsMsg) => m.nak(expiresMs + 500);
  const stats = { handled: 0, dead: 0, redelivered: 0 };
  const queue: JsMsg[] = [];
  let wake: (() => void) | undefined;
  let stopping = false;
  const abort = new AbortController();
  let inflight: JsMsg[] = [];
  /** Deliveries whose outcome comes later (see {@link Later}). */
  const held = new Set<JsMsg>();
  /** Where the durable starts again should the server lose it (protocol/reader/durable.ts). */
  const unsettled = new Unsettled();

  // The durable consumer keeps every delivery and ack state, so a stalled pull is replaced by a
  // new pull of the same consumer, made again first if the server has lost it. A pull that ends
  // by itself ends the inbox.
  let lag = new DurableLag(nc, options.spec, durable.consumer, log);
  let first = true;
  const pull = await Pull.start({
    open: async () => {
      if (!first && (await durable.check(unsettled.resumeAt()))) lag = new DurableLag(nc, options.spec, durable.consumer, log);
      first = false;
      await lag.move();
      const consumer = durable.consumer;
      return { consumer, messages: await consumer.consume({ max_messages: Math.max(batchSize * 2, 8), expires: expiresMs }) };
    },
    each: (m) => {
      lastActivity = Date.now();
      unsettled.received(m.info.streamSequence);
      // Arrived while stopping (already on its way when the subscription closed): hand it back.
      if (stopping) return void handBack(m);
      queue.push(m);
      wake?.();
    },
    revive: false,
    busy: () => queue.length > 0 || inflight.length > 0,
    stallMs: options.stallMs,
    // A durable the server no longer has is a stall to recover from: the new pull makes it again.
    waiting: () => lag.waiting().catch((error: unknown) => (isConsumerGone(error) ? 1 : Promise.reject(error))),
    log,
    about: () => ({ consumer: options.spec.config.durable_name }),
    remedy: "pulling again",
  });
  const reader = pull.done.finally(() => {
    stopping = true;
    wake?.();
  });

  const toDeadLetters = (m: JsMsg, reason: DeadLetter["reason"], detail: string, message?: MessageOf<K>) =>
    deadLetter(js, m, { reason, detail }, options.spec.config.durable_name).then(
      async () => {
        stats.dead++;
        log.warn({ subject: m.subject, seq: m.info.streamSequence, reason, detail }, "dead-lettered a message");
        // No reason text: nats-server 2.9 ignores "+TERM <reason>" and would redeliver the message.
        m.term();
        unsettled.settled(m.info.streamSequence);
        if (message && options.gaveUp) {
          await options
            .gaveUp(message, reason, detail)
            .catch((error: unknown) => log.warn({ err: error, subject: m.subject }, "could not tell that this message's work was given up"));
        }
      },
      (error) => {
        // The dead-letter stream is unreachable: leave the message for redelivery rather than lose it.
        log.error({ err: error, subject: m.subject }, "could not dead-letter a message; it will be redelivered");
        m.nak(5000);
      },
    );

  /**
   * Acks and naks synchronously (a promise only for a dead letter): the client writes what was
   * queued in one turn as one socket write, so a batch's acks go out together instead of one
   * write (and one server wake-up) each.
   */
  const apply = (m: JsMsg, message: MessageOf<K>, outcome: Decided): Promise<void> | undefined => {
    if (outcome === "ack") {
      m.ack();
      unsettled.settled(m.info.streamSequence);
      stats.handled++;
      return undefined;
    }
    if ("nak" in outcome) {
      m.nak(outcome.nak);
      return undefined;
    }
    return toDeadLetters(m, outcome.reason ?? "handler_failed", outcome.dead, message);
  };

  /** Handling a delivery failed: redelivered after a backoff while a retry can help, else dead-lettered. */
  const failed = async (m: JsMsg, d: Delivery<MessageOf<K>>, error: unknown) => {
    const delay = redeliveryDelay(error, d.deliveries, options.spec.config.max_deliver ?? MAX_DELIVER);
    if (delay !== undefined) {
      stats.redelivered++;
      m.nak(delay);
    } else {
      await toDeadLetters(m, "handler_failed", (error as Error).message, d.message);
    }
  };

  /** A held delivery's outcome has come (an Error: its handling failed). Handed back already when stopping. */
  const settle = async (m: JsMsg, d: Delivery<MessageOf<K>>, outcome: Decided | Error) => {
    if (!held.delete(m)) return;
    lastActivity = Date.now();
    if (!(outcome instanceof Error)) return apply(m, d.message, outcome);
    await failed(m, d, outcome);
    log.warn({ err: outcome, subject: m.subject }, "handling a held message failed; it will be redelivered or dead-lettered");
  };

  const worker = (async () => {
    while (true) {
      if (queue.length === 0) {
        if (stopping) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
        continue;
      }
      const raw = queue.splice(0, batchSize);
      const valid: { m: JsMsg; d: Delivery<MessageOf<K>> }[] = [];
      for (const m of raw) {
        if (options.skip?.(m.subject)) {
          m.ack();
          unsettled.settled(m.info.streamSequence);
          stats.handled++;
          continue;
        }
        const fence = options.fence;
        // Awaited only where there is a fence: an await per delivery would split the batch's work over turns.
        if (fence) {
          try {
            await fence.see(m);
          } catch (error) {
            // The lease could not be read again (a site just reconnected, JetStream not yet back),
            // so whether this is a stale leader's cannot be told now: it comes back later. Thrown,
            // it would end this loop while the pull went on filling the queue: a silent stall.
            log.warn({ err: error, subject: m.subject }, "could not read the coordinator lease to admit a delivery; it will be redelivered");
            // Backed off by delivery count, so a long settling period does not use up max_deliver.
            m.nak(backoffMs(m.info.deliveryCount, 1000, LEASE_RETRY_MAX_MS));
            continue;
          }
        }
        const a = admit(m.subject, m.data, options.types, options.roster, undefined, fence && ((message) => fence.judge(message, m)), {
          redelivered: m.info.redelivered,
        });
        if (a.ok) valid.push({ m, d: { message: a.message, subject: m.subject, deliveries: m.info.deliveryCount, streamSeq: m.info.streamSequence } });
        else await toDeadLetters(m, a.reason, a.detail);
      }
      if (valid.length === 0) continue;
      if (stopping) {
        for (const v of valid) handBack(v.m);
        continue;
      }
      let outcomes: Outcome[] | void;
      inflight = valid.map((v) => v.m);
      try {
        outcomes = await options.handler(
          valid.map((v) => v.d),
          abort.signal,
        );
        if (stopping) continue; // already nak'ed by stop()
      } catch (error) {
        if (stopping) continue;
        for (const v of valid) await failed(v.m, v.d, error);
        log.warn({ err: error, batch: valid.length }, "handler failed; batch will be redelivered or dead-lettered");
        continue;
      } finally {
        inflight = [];
        lastActivity = Date.now();
      }
      for (let i = 0; i < valid.length; i++) {
        const v = valid[i]!;
        const outcome = outcomes?.[i] ?? "ack";
        if (typeof outcome === "object" && "later" in outcome) {
          held.add(v.m);
          outcome.later.then(
            (o) => settle(v.m, v.d, o),
            (error: unknown) => settle(v.m, v.d, error instanceof Error ? error : new Error(String(error))),
          );
          continue;
        }
        const dead = apply(v.m, v.d.message, outcome);
        if (dead) await dead;
      }
    }
  })();

  // Work in progress and messages waiting their turn keep their ack deadline alive, so ack_wait
  // can stay short and a crashed process's messages come back quickly.
  const ackWaitMs = (options.spec.config.ack_wait ?? 30_000_000_000) / 1_000_000;
  const keepAlive = setInterval(
    () => {
      for (const m of inflight) m.working();
      for (const m of queue) m.working();
      for (const m of held) m.working();
    },
    Math.max(250, ackWaitMs / 3),
  );
  keepAlive.unref();

  const done = Promise.allSettled([reader, worker]).then(() => clearInterval(keepAlive));
  return {
    stats,
    idleMs: () => (queue.length || inflight.length || held.size ? 0 : Date.now() - lastActivity),
    done,
    async stop(graceMs = 2000) {
      if (stopping && inflight.length === 0 && queue.length === 0 && held.size === 0) return done;
      stopping = true;
      // Unsubscribe first (close() does it at once), so nothing more arrives, then hand back.
      const closed = pull.stop();
      for (const m of [...inflight, ...queue.splice(0), ...held]) handBack(m);
      inflight = [];
      held.clear();
      abort.abort();
      wake?.();
      await closed;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    },
  };
}
