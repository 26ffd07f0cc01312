/**
 * The one stall watchdog of every stream reader. A pull whose consumer leader died with a cluster
 * node was seen to stall for minutes on nats-server 2.9 while messages waited (a durable's pull
 * and an ordered consumer alike; the client is meant to recover and did not). So a reader that
 * has made no progress for a while asks its consumer whether messages are pending and, if so,
 * starts reading anew.
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

/** Starts watching: every STALL_MS / 3, a reader quiet for STALL_MS with messages pending is restarted. */
export function watchForStalls(w: StallWatch): Watchdog {
  let progressAt = Date.now();
  let checking = false;
  const timer = setInterval(async () => {
    if (w.stopped() || checking || w.busy?.() || Date.now() - progressAt < STALL_MS) return;
    checking = true;
    try {
      const pending = await pendingOf(w.consumer());
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
  }, STALL_MS / 3);
  timer.unref();
  return {
    progress: () => void (progressAt = Date.now()),
    stop: () => clearInterval(timer),
  };
}

/** Messages waiting for the consumer. No answer at all is as telling as pending messages: it counts as one. */
function pendingOf(consumer: Consumer): Promise<number> {
  return withTimeout(consumer.info(false), ASK_MS, "asking a consumer what is pending").then(
    (i) => i.num_pending,
    () => 1,
  );
}
