/**
 * The one retry policy of the protocol layer: what may be tried again, and after how long.
 * Retrying what retrying can help: while a cluster elects a new stream or consumer leader (a node
 * died), its API answers with timeouts or "no responders" for seconds; and nats-server 2.9 keeps
 * placing new ephemeral consumers on a dead peer for up to about a minute (seen here: about half
 * of the ordered consumers created in that minute never answered). A reader or follower that
 * gave up then would hold up an iteration or leave a peer out of the panel.
 */
import { PopError, isPermissionViolation } from "./errors.ts";

/** The few logger methods a retry reports through (pino's shape). */
export interface RetryLog {
  warn(details: object, message: string): void;
}

/** Whether trying again can help: not for a refusal by permissions nor a PopError marked final. */
export function canRetry(error: unknown): boolean {
  if (isPermissionViolation(error) || isFinal(error)) return false;
  return !(error instanceof PopError) || error.retryable;
}

/**
 * nats.js errors no retry can change: a connection closed on purpose, and a stream that does
 * not exist (JetStream API error 10059; a cluster electing a leader answers 503 or times out
 * instead, so a read of a misspelt experiment fails at once rather than after a minute and a half).
 */
function isFinal(error: unknown): boolean {
  for (let e = error as { name?: string; code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.name === "ClosedConnectionError" || e.name === "StreamNotFoundError") return true;
    if (e.name === "JetStreamApiError" && e.code === 10059) return true;
  }
  return false;
}

/** Exponential backoff: `firstMs` · 2^attempt, at most `maxMs`. */
export function backoffMs(attempt: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** attempt);
}

/** Longest wait before a message whose handler failed is tried again (a model server restarting takes minutes). */
const REDELIVERY_MAX_MS = 300_000;

/**
 * A delivery whose handling failed (the inbox's work queue): how long until it is delivered
 * again, or undefined when it is to be given up (dead-lettered): the error is one no retry can
 * help, or its last delivery (of `maxDeliver`) is near.
 */
export function redeliveryDelay(error: unknown, deliveries: number, maxDeliver: number): number | undefined {
  if (!canRetry(error) || deliveries >= maxDeliver - 1) return undefined;
  return backoffMs(deliveries, 1000, REDELIVERY_MAX_MS);
}

/** Runs `fn` until it succeeds, a non-retryable error comes, or `maxMs` has passed. */
export async function retrying<T>(what: string, fn: () => Promise<T>, log?: RetryLog, maxMs = 120_000): Promise<T> {
  const deadline = Date.now() + maxMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!canRetry(error) || Date.now() > deadline) throw error;
      const waitMs = backoffMs(attempt, 250, 10_000);
      log?.warn({ err: error, attempt, waitMs }, `${what} failed; trying again`);
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
