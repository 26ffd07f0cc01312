/** Errors of the OpenAI-compatible client. Each names the server, the request and what to do. */
import { PopError } from "../../../protocol/mod.ts";

/**
 * The server could not be reached or kept failing (connection refused, timeouts, 429, 5xx)
 * through every retry. Retryable: the actor hands the work back to the stream for later.
 */
export class ServerUnavailableError extends PopError {
  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, { cause: options.cause, retryable: true });
    this.status = options.status;
  }
  /** The last HTTP status seen, when the server answered at all. */
  readonly status: number | undefined;
}

/**
 * The server refused the request itself (4xx other than 408/429): a wrong model name, a prompt
 * over its context length, an unsupported option. Sending it again will not help.
 */
export class ServerRequestError extends PopError {
  constructor(
    message: string,
    readonly status: number,
    options: { cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause, retryable: false });
  }
}

/** The server answered 2xx with a body that is not a chat completion (or not JSON). */
export class ServerResponseError extends PopError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause, retryable: true });
  }
}
