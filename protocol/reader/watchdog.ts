/**
 * The one stall watchdog of every stream reader. A pull whose consumer leader died with a cluster
 * node was seen to stall for minutes on nats-server 2.9 while messages waited (a durable's pull
 * and an ordered consumer alike; the client is meant to recover and did not). So a reader that
 * has made no progress for a while asks whether messages wait for it and, if so, starts reading
 * anew. Where the reader can say what it last had, the stream leader is asked (a consumer on a
 * replica that lags answers that nothing is pending); otherwise its consumer.
 */
import type { Consumer } from "@nats-io/jetstream";
import { withTimeout } from "../timeout.ts";
import type { ReaderLog } from "./log.ts";

/** How long a reader may make no progress before the watchdog asks whether it has stalled. */
export const STALL_MS = 15_000;

/** How long the watchdog waits for the consumer's answer. */
const ASK_MS = 10_000;

/** What the watchdog watches. */
export interface StallWatch {
  /** The consumer whose pending count tells a stalled reader from one with nothing to read. */
  consumer(): Consumer;
  /**
   * Messages the reader has not had, as the stream leader holds them (protocol/reader/leader.ts):
   * a consumer answers from its own replica, which may lag for good. When this throws (no leader
   * now), or is not given, the consumer is asked.
   */
  waiting?(): Promise<number>;
  /** How long a reader may make no progress before it is asked about; default {@link STALL_MS}. */
  stallMs?: number;
  /** Work in hand (not a stall however long it takes); default none. */
  busy?(): boolean;
  stopped(): boolean;
  /** Starts reading anew; the watchdog tries again later when it throws. */
  restart(): Promise<void>;
  log: ReaderLog;
  /** Who is reading what, for the warnings. */
  about(): object;
  /** What `restart` does, in words, for the warning. */
  remedy: string;
}

/** A running watchdog. */
export interface Watchdog {
  /** The reader made progress (a delivery, a message handled): its quiet time starts again. */
  progress(): void;
  stop(): void;
}

/** Starts watching: every stall time / 3, a reader quiet for the stall time with messages waiting is restarted. */
export function watchForStalls(w: StallWatch): Watchdog {
  const stallMs = w.stallMs ?? STALL_MS;
  let progressAt = Date.now();
  let checking = false;
  const timer = setInterval(async () => {
    if (w.stopped() || checking || w.busy?.() || Date.now() - progressAt < stallMs) return;
    checking = true;
    try {
      const pending = await waitingFor(w);
      if (pending > 0 && !w.stopped()) {
        w.log.warn({ ...w.about(), pending }, `stream reader stalled with messages pending; ${w.remedy}`);
        await w.restart();
      }
      progressAt = Date.now();
    } catch (error) {
      w.log.warn({ err: error, ...w.about() }, "could not restart a stalled stream reader; will try again");
    } finally {
      checking = false;
    }
  }, stallMs / 3);
  timer.unref();
  return {
    progress: () => void (progressAt = Date.now()),
    stop: () => clearInterval(timer),
  };
}

/** Messages waiting for the reader: the leader's answer where it can be had, else the consumer's. */
async function waitingFor(w: StallWatch): Promise<number> {
  if (w.waiting) {
    try {
      return await w.waiting();
    } catch (error) {
      w.log.warn({ err: error, ...w.about() }, "could not ask the stream leader what a quiet reader missed; asking its consumer");
    }
  }
  return pendingOf(w.consumer());
}

/** Messages waiting for the consumer. No answer at all is as telling as pending messages: it counts as one. */
function pendingOf(consumer: Consumer): Promise<number> {
  return withTimeout(consumer.info(false), ASK_MS, "asking a consumer what is pending").then(
    (i) => i.num_pending,
    () => 1,
  );
}
