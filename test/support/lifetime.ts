/** How test fixtures end: once, and with the test that made them. */
import { onTestFinished } from "vitest";

/** Runs `fn` once; later calls wait for that one run (a fixture can be ended by two paths). */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

/**
 * Ends a fixture when the current test finishes too, whatever `await using` does: a test that
 * times out leaves its body running, so the block's own disposal may come too late or never.
 * Outside a test (`npm run chaos`, a beforeAll) there is nothing to tie it to.
 */
export function endWithTest(dispose: () => Promise<void>): void {
  try {
    onTestFinished(dispose);
  } catch {
    // Not inside a test: `await using` or an explicit dispose() ends it.
  }
}
