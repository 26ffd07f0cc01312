/** Errors of the model backends, shared by every backend and by the roles that call them. */
import { PopError } from "../../protocol/mod.ts";

/** The model answered something unusable (no answers, a non-number score). Retrying won't help. */
export class ModelOutputError extends PopError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retryable: false });
  }
}
