/** A JetStream call that must not hang the coordinator's loop. */
import { PopError } from "../protocol/mod.ts";

/** Runs `fn`; rejects with a retryable error when it has not settled after `ms`. */
export async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const running = fn();
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PopError(`${what} did not finish within ${ms / 1000} s`, { retryable: true })), ms);
  });
  try {
    return await Promise.race([running, late]);
  } finally {
    clearTimeout(timer);
    running.catch(() => undefined);
  }
}
