/** Errors of the actor. */
import { PopError } from "../protocol/mod.ts";

/** The model answered something unusable (no answers, a non-number score). Retrying won't help. */
export class ModelOutputError extends PopError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retryable: false });
  }
}

/** The actor cannot start: a bad option, a missing experiment, a checkpoint that won't load. */
export class ActorStartError extends PopError {}
