/**
 * Errors of the OpenAI-compatible server, in vLLM's shape, so a client written against vLLM
 * (our `openai` backend among them) reads ours the same way.
 */

/** HTTP statuses the server answers errors with. */
export type ErrorStatus = 400 | 404 | 405 | 413 | 500;

/** vLLM's error type names for 400/404/500; the other two follow the same naming. */
const TYPES: Record<ErrorStatus, string> = {
  400: "BadRequestError",
  404: "NotFoundError",
  405: "MethodNotAllowedError",
  413: "RequestEntityTooLargeError",
  500: "InternalServerError",
};

/** A request the server refuses or could not serve; `status` is the HTTP status to answer with. */
export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ApiError";
  }
}

/** The JSON body vLLM sends with an error. */
export function errorBody(status: ErrorStatus, message: string) {
  return { object: "error", message, type: TYPES[status], param: null, code: status };
}

/** Shorthand for a 400 about the request body. */
export const badRequest = (message: string) => new ApiError(400, message);
