/**
 * The one bound on a wait: a JetStream call seen to hang past its own request timeout (a cluster
 * re-electing leaders), a shutdown step that must not hang on a server that is gone.
 */
import { TimedOutError } from "./errors.ts";

/**
 * `promise`'s value, or a {@link TimedOutError} naming `what` when it has not settled within `ms`
 * (the promise keeps running; a later rejection is swallowed).
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  promise.catch(() => undefined);
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimedOutError(`${what}: no answer within ${ms / 1000} s`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether `promise` settled within `ms`: for steps given up on when slow. A failure within the
 * time still throws.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number, what = "a bounded wait"): Promise<boolean> {
  try {
    await withTimeout(promise, ms, what);
    return true;
  } catch (error) {
    if (error instanceof TimedOutError) return false;
    throw error;
  }
}
