/** Errors of `pop plan`'s calibration; each names the member and its server. */
import { PopError } from "../../../protocol/mod.ts";

/** A member's server could not be reached (or kept failing) within the wait. Retryable: start it, then plan again. */
export class MemberUnreachableError extends PopError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause, retryable: true });
  }
}

/**
 * A member's server answered but refused the calibration's requests (a model it does not serve,
 * a prompt over its context length, an option it does not take): the run would meet the same.
 */
export class MemberRefusedError extends PopError {}
