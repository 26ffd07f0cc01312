/**
 * Errors of the OpenAI-compatible server, in the shape OpenAI and current vLLM send them
 * (`{"error": {"message", "type", "param", "code"}}`), so the official clients raise their typed
 * errors (NotFoundError, BadRequestError with `param`, ...) and our `openai` backend reads them.
 */

/** HTTP statuses the server answers errors with. */
export type ErrorStatus = 400 | 404 | 405 | 409 | 413 | 422 | 500 | 503;

/** vLLM's error type names for 400/404/500; the others follow the same naming. */
const TYPES: Record<ErrorStatus, string> = {
  400: "BadRequestError",
  404: "NotFoundError",
  405: "MethodNotAllowedError",
  409: "ConflictError",
  413: "RequestEntityTooLargeError",
  422: "UnprocessableEntityError",
  500: "InternalServerError",
  503: "ServiceUnavailableError",
};

/** A request the server refuses or could not serve; `status` is the HTTP status to answer with. */
export class ApiError extends Error {
  /** The request field at fault, when one is (the body's `param`). */
  readonly param: string | null;
  constructor(
    readonly status: ErrorStatus,
    message: string,
    options?: { cause?: unknown; param?: string },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.param = options?.param ?? null;
  }
  /** Whether the same request may succeed later (the client's cue to retry). */
  get retryable(): boolean {
    return this.status >= 500;
  }
}

/** A request body over the per-request cap (413); the connection is closed rather than read on. */
export class BodyTooLargeError extends ApiError {
  constructor(limit: number) {
    super(413, `the request body is over the limit of ${bytes(limit)}`);
  }
}

/**
 * The server holds as many requests, or as many bytes of request bodies, as it allows at once
 * (503 with Retry-After): retrying shortly succeeds once earlier requests are answered.
 */
export class ServerBusyError extends ApiError {
  readonly retryAfterS = 1;
  constructor(message: string) {
    super(503, message);
  }
}

/** The server is stopping (503): another replica, or this one restarted, can take the request. */
export class ShuttingDownError extends ApiError {
  constructor() {
    super(503, "the server is shutting down");
  }
}

/**
 * A `lora_path` the server will not open (400): outside the adapter root, not a regular file, or
 * over the adapter byte cap. Never says whether anything exists outside the root.
 */
export class AdapterPathError extends ApiError {
  constructor(message: string) {
    super(400, message);
  }
}

/** Nothing to load at a `lora_path` under the adapter root (404, as vLLM answers a missing adapter). */
export class AdapterNotFoundError extends ApiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(404, message, options);
  }
}

/** The server holds as many adapters as it allows (409): unload one first. */
export class AdapterLimitError extends ApiError {
  constructor(limit: number) {
    super(409, `the server holds its most adapters (${limit}, --max-adapters); unload one first`);
  }
}

/**
 * An adapter trained from another base than the one served (422): its weights would not fit, or
 * would answer as another member.
 */
export class AdapterBaseMismatchError extends ApiError {
  constructor(message: string) {
    super(422, message);
  }
}

/** What an error body's `error` holds: vLLM's type names and the status as `code`, as current vLLM sends them. */
export interface ErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: number;
}

/** The JSON body sent with an error; `type` overrides the status's type name. */
export function errorBody(status: ErrorStatus, message: string, param: string | null = null, type?: string): { error: ErrorObject } {
  return { error: { message, type: type ?? TYPES[status], param, code: status } };
}

/** Shorthand for a 400 about the request body; `param` names the field at fault. */
export const badRequest = (message: string, param?: string) => new ApiError(400, message, { param });

/** A byte count as people read it: whole MiB when it is one, bytes otherwise. */
export function bytes(n: number): string {
  const MIB = 1024 * 1024;
  return n % MIB === 0 ? `${n / MIB} MiB` : `${n} bytes`;
}

/**
 * An error with a type name of its own in the body: vLLM answers refused adapter requests with
 * type "InvalidUserInput" rather than the status's usual name.
 */
export class TypedApiError extends ApiError {
  constructor(
    status: ErrorStatus,
    message: string,
    readonly type: string,
    param?: string,
  ) {
    super(status, message, { param });
  }
}
/** A refused adapter request, as vLLM types it. */
export const invalidInput = (message: string) => new TypedApiError(400, message, "InvalidUserInput");
