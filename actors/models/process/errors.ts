/**
 * What can go wrong with a peer program. Everything the program does wrong on the wire or as a
 * process is retryable: the program is restarted and the work goes back to the stream, so another
 * try (or another instance) may succeed. The program's own error replies carry its retryable flag.
 */
import { PopError } from "../../../protocol/mod.ts";

/** Base of the peer program's errors; `stderrTail` holds its last stderr lines, when there are any. */
export class PeerProcessError extends PopError {
  readonly stderrTail: string[];
  constructor(message: string, options: { cause?: unknown; retryable?: boolean; stderrTail?: string[] } = {}) {
    const tail = options.stderrTail?.length ? `\n--- last ${options.stderrTail.length} lines of its stderr ---\n${options.stderrTail.join("\n")}` : "";
    super(message + tail, { cause: options.cause, retryable: options.retryable ?? true });
    this.stderrTail = options.stderrTail ?? [];
  }
}

/** The program could not be started, or did not say hello in time, or said a hello the actor cannot accept. */
export class PeerStartError extends PeerProcessError {}

/** The program exited (or was killed) with requests in flight. */
export class PeerExitedError extends PeerProcessError {}

/** A request had no reply within its deadline; the program is stopped and restarted. */
export class PeerTimeoutError extends PeerProcessError {}

/** The program wrote a line that is not JSON, or a message its schema refuses, or a reply to no request. */
export class PeerProtocolError extends PeerProcessError {}

/** The program answered a request with an error; `retryable` is the program's own say. */
export class PeerReportedError extends PeerProcessError {}

/** The program was stopped (the backend is being disposed); the work goes back. */
export class PeerStoppedError extends PeerProcessError {}
