/** Bounding a wait: shutdown steps must not hang on a server that is gone. */

/** Marks a step given up on by {@link within}. */
export const TIMED_OUT = Symbol("timed out");

/**
 * Waits for `promise` at most `ms`; resolves with its value, or with {@link TIMED_OUT} when the
 * time runs out first (the promise keeps running; a later rejection is swallowed).
 */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), ms)));
  promise.catch(() => undefined);
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
