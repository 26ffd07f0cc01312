/**
 * Named errors of the protocol layer. Every error says whether retrying the same operation can
 * help (`retryable`) and carries the underlying `cause` when there is one.
 */
export class PopError extends Error {
  /** True when the same call may succeed later (a server restarting, a timeout). */
  readonly retryable: boolean;
  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

/** Why a message could not be decoded. */
export type DecodeFailure = "malformed" | "invalid" | "unsupported_version" | "identity_mismatch" | "bad_subject";

/** A message's bytes are not a valid protocol message. Never retryable: the bytes won't change. */
export class DecodeError extends PopError {
  readonly reason: DecodeFailure;
  /** Human-readable list of what is wrong, one entry per problem. */
  readonly problems: string[];
  constructor(reason: DecodeFailure, problems: string[], options: { cause?: unknown } = {}) {
    super(`${reason}: ${problems.join("; ")}`, { cause: options.cause, retryable: false });
    this.reason = reason;
    this.problems = problems;
  }
}

/** A subject or name token does not follow the protocol's rules. */
export class SubjectError extends PopError {}

/** The connected NATS server cannot do what the topology asks; upgrade the server or drop the option. */
export class UnsupportedServerError extends PopError {}

/** An existing stream, consumer or bucket conflicts with the definition and can't be updated in place. */
export class TopologyConflictError extends PopError {}

/** A bounded call had no answer in time (protocol/timeout.ts); retryable: it may answer later. */
export class TimedOutError extends PopError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, retryable: true });
  }
}

/** A stream read could not get every stored message (the server kept answering empty); retryable. */
export class IncompleteReadError extends PopError {}

/**
 * Whether the NATS server refused the operation under this connection's permissions (nats.js
 * `PermissionViolationError`, possibly the cause of a request error). Retrying with the same
 * credentials cannot help.
 */
export function isPermissionViolation(error: unknown): boolean {
  for (let e = error as { name?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e.name === "PermissionViolationError") return true;
  }
  return false;
}
