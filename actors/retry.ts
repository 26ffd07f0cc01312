/**
 * Start-up steps that talk to JetStream retry what retrying can help: while a cluster elects a
 * new stream or consumer leader (a node died), its API answers with timeouts or "no responders"
 * for seconds, and an actor that gave up then would leave its peer missing from the panel.
 */
import type { Logger } from "pino";
import { PopError } from "../protocol/mod.ts";

/** Runs `fn` until it succeeds, a non-retryable error comes, or `maxMs` has passed. */
export async function retrying<T>(what: string, fn: () => Promise<T>, log: Logger, maxMs = 120_000): Promise<T> {
  const deadline = Date.now() + maxMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const retryable = !(error instanceof PopError) || error.retryable;
      if (!retryable || Date.now() > deadline) throw error;
      const waitMs = Math.min(10_000, 500 * 2 ** attempt);
      log.warn({ err: error, attempt, waitMs }, `${what} failed; trying again`);
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}
