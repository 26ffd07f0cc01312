/**
 * How much the server takes on at once: requests in flight, and bytes of request bodies held
 * (from the first byte read until the answer is sent, since the parsed body lives that long).
 * Beyond either bound a request is answered 503 at once, so many large bodies arriving together
 * cost bounded memory instead of each being buffered first.
 */
import type { IncomingMessage } from "node:http";
import { BodyTooLargeError, bytes, ServerBusyError } from "./errors.ts";

/** The bounds; see the module comment. */
export interface AdmissionLimits {
  /** Most requests between arrival and answer. */
  maxInFlight: number;
  /** Largest body of one request (413 beyond). */
  maxBodyBytes: number;
  /** Most bytes of bodies held by all requests in flight together (503 beyond). */
  maxBodyBytesInFlight: number;
}

/** One admitted request's share; {@link Ticket.release} once it is answered (twice is harmless). */
export interface Ticket {
  /** Reads the body, counting each chunk against both caps as it arrives. */
  readBody(req: IncomingMessage): Promise<Buffer>;
  release(): void;
}

/** Counts requests and body bytes in flight against {@link AdmissionLimits}. */
export class Admission {
  private requests = 0;
  private held = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  /** Now: requests in flight and body bytes they hold. */
  get load(): { requests: number; bodyBytes: number } {
    return { requests: this.requests, bodyBytes: this.held };
  }

  /** Admits a request, or throws {@link ServerBusyError} when as many are in flight as allowed. */
  enter(): Ticket {
    if (this.requests >= this.limits.maxInFlight) {
      throw new ServerBusyError(`the server is answering its most requests at once (${this.limits.maxInFlight}, --max-in-flight); retry shortly`);
    }
    this.requests++;
    let mine = 0;
    let released = false;
    const take = (n: number) => {
      if (this.held + n > this.limits.maxBodyBytesInFlight) {
        throw new ServerBusyError(
          `the server holds its most request bodies at once (${bytes(this.limits.maxBodyBytesInFlight)}, --max-body-bytes-in-flight); retry shortly`,
        );
      }
      this.held += n;
      mine += n;
    };
    return {
      readBody: (req) => readCounted(req, this.limits.maxBodyBytes, take),
      release: () => {
        if (released) return;
        released = true;
        this.requests--;
        this.held -= mine;
      },
    };
  }
}

/**
 * The body, each chunk passed to `take` (which may throw) before it is kept; one over `limit` is
 * refused as early as its headers say so. A refused body is discarded, not kept: the caller
 * answers and closes the connection.
 */
function readCounted(req: IncomingMessage, limit: number, take: (n: number) => void): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: unknown) => {
      req.off("data", onData);
      // The rest is discarded as it comes (nothing is kept) until the answer closes the connection.
      req.resume();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return fail(new BodyTooLargeError(limit));
      try {
        take(chunk.length);
      } catch (error) {
        return fail(error);
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", reject);
    // A client that hangs up mid-body: nothing will come, and nothing is waiting on an answer.
    req.on("close", () => {
      if (!req.complete) reject(new Error("the client closed the connection before sending the whole body"));
    });
  });
}
