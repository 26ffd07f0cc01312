/** Bounding a JetStream call that was seen to hang past its own request timeout (a cluster re-electing leaders). */
import { PopError } from "./errors.ts";

/** `promise`'s value, or a retryable PopError naming `what` when it has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  promise.catch(() => undefined);
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new PopError(`${what}: no answer within ${ms / 1000} s`, { retryable: true })), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
