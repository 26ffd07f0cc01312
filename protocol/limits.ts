/**
 * Server-side limits of everything the loop stores: the protocol streams, the KV buckets, the
 * pools-and-images object bucket and each peer's weights bucket. The server refuses a write
 * beyond them (every stream discards new, never old: nothing stored is ever evicted to make
 * room), so a member with legitimate credentials cannot fill the server's disk; the refusal
 * becomes a {@link LimitExceededError} that says which limit was hit.
 *
 * The defaults are the one place these numbers live. They are sized so that a demo and an
 * iteration of 1,000,000 prompts (8 members, k answers a prompt; deploy/bench sizes such runs)
 * are never refused; an experiment config may lower or raise them (`limits`).
 */
import { z } from "zod";
import { PopError } from "./errors.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const bytes = (fallback: number) => z.number().int().min(1024).default(fallback);

/** Limits of an experiment's storage; every field has a default. */
export const Limits = z.object({
  /**
   * Largest message any stream or bucket stores (a stream's `max_msg_size`). The codec refuses
   * protocol messages over 1 MiB (its MAX_MESSAGE_BYTES) before they are sent; the room above
   * it is for headers.
   */
  messageBytes: bytes(1 * MiB + 64 * 1024),
  /**
   * Bytes each protocol stream (prompts, candidates, verdicts, pairs, evaluations, control, dead
   * letters) may hold; unset by default. nats-server reserves a stream's `max_bytes` against its
   * storage when the stream is created (and refuses one that does not fit: "insufficient storage
   * resources available"), so a default large enough for 1,000,000-prompt iterations (~30 GB of
   * candidates each) would not fit a small disk. Set it to what the server's disk can hold.
   */
  streamBytes: z.number().int().min(1024).optional(),
  /** Messages each protocol stream may hold (1,000,000 prompts x 8 members x several iterations). */
  streamMessages: z.number().int().min(1000).default(100_000_000),
  /**
   * Bytes of the state bucket (configs, progress, iteration and model records: a few KB each).
   * The KV buckets' byte limits are reserved on the server (see streamBytes); they are small.
   */
  stateBytes: bytes(1 * GiB),
  /** Bytes of the membership bucket (one small record per process, history 1). */
  membersBytes: bytes(256 * MiB),
  /**
   * Bytes of the pools-and-images bucket (a million prompts with images of a few hundred KB).
   * Object buckets are bounded by their chunk count (bytes / {@link OBJECT_CHUNK_BYTES}) and a
   * chunk-sized message limit, which the server does not reserve, so these may exceed the disk.
   */
  blobsBytes: bytes(512 * GiB),
  /**
   * Bytes of each peer's own weights bucket: every iteration's weights of that peer (a 7B
   * model's full weights are ~15 GB, a LoRA adapter ~100 MB). A peer over it cannot publish
   * more weights; the other peers keep their own share.
   */
  weightsBytes: bytes(64 * GiB),
});
export type Limits = z.infer<typeof Limits>;

/** The chunk size nats.js writes objects in (its default); an object bucket's messages are at most this plus room for metadata. */
export const OBJECT_CHUNK_BYTES = 128 * 1024;

/** The default limits (an experiment config without `limits` gets these). */
export const DEFAULT_LIMITS: Limits = Limits.parse({});

/**
 * The server refused a write because a stream or bucket is full or the message is too large for
 * it. Not retryable: the same write is refused until an operator frees room or raises the limit
 * (experiment config `limits`).
 */
export class LimitExceededError extends PopError {
  constructor(
    message: string,
    /** The server's own words (e.g. "maximum bytes exceeded"). */
    readonly serverSays: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, { ...options, retryable: false });
  }
}

const LIMIT_REFUSAL =
  /maximum (bytes|messages)( per subject)? exceeded|message size exceeds maximum|exceeds? (the )?max(imum)? payload|resource limits exceeded|insufficient (storage )?resources/i;

/** The server's limit refusal in `error` or its causes, if it is one. */
export function limitRefusalOf(error: unknown): string | undefined {
  for (let e = error as { message?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const m = typeof e.message === "string" ? LIMIT_REFUSAL.exec(e.message) : null;
    if (m) return e.message!;
  }
  return undefined;
}

/**
 * `error` as a {@link LimitExceededError} when the server refused `what` for a limit; otherwise
 * `error` unchanged. `where` names the stream or bucket and the config key that sets its limit.
 */
export function asLimitError(error: unknown, what: string, where: string): unknown {
  const says = limitRefusalOf(error);
  if (says === undefined) return error;
  return new LimitExceededError(
    `the server refused ${what}: ${where} is at its limit (server: "${says}"); free room or raise the experiment config's limits`,
    says,
    {
      cause: error,
    },
  );
}
