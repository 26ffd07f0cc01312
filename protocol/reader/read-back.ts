/**
 * The read-back mode of the stream reader: what a stream holds for one subject filter, read to
 * its end and returned (replays, reports, revotes, training sets). A read is bounded, so it needs
 * no watchdog: an empty fetch while messages are pending is its stall, and the read is tried again;
 * what its consumer's replica lacks is read from the stream leader at the end.
 */
import type { Consumer } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { admit, deadLetter, type Roster } from "../admit.ts";
import { IncompleteReadError } from "../errors.ts";
import type { FenceView } from "../fence.ts";
import { jetStreamOf } from "../jetstream.ts";
import { retrying } from "../retry.ts";
import type { MessageOf, MessageType } from "../schemas.ts";
import { withTimeout } from "../timeout.ts";
import { LeaderReader } from "./leader.ts";
import type { StreamMessage } from "./message.ts";
import { CALL_MS, orderedConsumer } from "./ordered.ts";

/** Empty fetches (2 s each) tolerated while the server reports pending messages. */
const MAX_EMPTY_FETCHES = 10;

/** A stored message the admission policy refused during a replay; replays skip it and report it. */
export interface SkippedMessage {
  subject: string;
  seq: number;
  reason: string;
}

/** Options of {@link readStored}. */
export interface ReadOptions {
  /** Who may speak (protocol/admit.ts); others are skipped as `not_member`. */
  roster?: Roster;
  /**
   * Dead-letter what is skipped, as this consumer (readers that act on what they read: training's
   * read of the pairs). Read-only readers (reports, revotes, observers) leave it out and report
   * the skipped messages themselves.
   */
  deadLetterAs?: string;
  /** The lease's view (protocol/fence.ts): stale coordinator messages are skipped as stale_leader. */
  fence?: FenceView;
  /**
   * Whether to ask the stream leader for what the consumer's replica lacks (default true). False
   * for a reader whose credentials may not (a peer reading its own verdicts): the refused request
   * would be logged as a permissions violation on every read.
   */
  askLeader?: boolean;
  /** Where the read's consumer comes from: default an ordered consumer of the filter. Tests pass one that reads a replica which lags. */
  consumer?: () => Promise<Consumer>;
}

/**
 * Every message of `type` currently stored under `filter` (one subject filter: nats-server 2.9
 * cannot take several), in stream order. Invalid messages are skipped and listed, never thrown.
 * An empty fetch ends the read only when the server says nothing is pending; a server that keeps
 * answering empty while messages are pending (a leader moving) gives IncompleteReadError instead
 * of a silently partial result. Holds every message: for a subject that can hold an iteration's
 * worth (a million prompts), use {@link visitStored}.
 */
export async function readStored<T extends MessageType>(
  nc: NatsConnection,
  stream: string,
  filter: string,
  type: T,
  options: ReadOptions = {},
): Promise<{ messages: MessageOf<T>[]; skipped: SkippedMessage[] }> {
  let messages: MessageOf<T>[] = [];
  const { skipped } = await visitStored(nc, stream, filter, type, (m) => void messages.push(m), { ...options, begin: () => (messages = []) });
  return { messages, skipped };
}

/** Options of {@link visitStored}. */
export interface VisitOptions extends ReadOptions {
  /**
   * Called before each attempt: a read that fails part-way (a server outage) is tried again from
   * the start, so `visit` sees those messages again; reset here what it gathers.
   */
  begin?: () => void;
}

/**
 * {@link readStored} without holding the messages: each admitted one goes to `visit` as it is
 * read (and is awaited), so a read of a million messages takes the memory of one fetch. Returns
 * how many were visited and the skipped ones.
 */
export async function visitStored<T extends MessageType>(
  nc: NatsConnection,
  stream: string,
  filter: string,
  type: T,
  visit: (message: MessageOf<T>) => void | Promise<void>,
  options: VisitOptions = {},
): Promise<{ visited: number; skipped: SkippedMessage[] }> {
  // A read is repeatable; dead letters of a repeated read are deduplicated by their ids.
  return retrying(
    `reading ${filter} from ${stream}`,
    () => {
      options.begin?.();
      return readOnce(nc, stream, filter, type, options, visit);
    },
    undefined,
    READ_RETRY_MS,
  );
}

/** How long a read keeps trying (a cluster that lost a node settles within about a minute). */
const READ_RETRY_MS = 90_000;

async function readOnce<T extends MessageType>(
  nc: NatsConnection,
  stream: string,
  filter: string,
  type: T,
  options: ReadOptions,
  visit: (message: MessageOf<T>) => void | Promise<void>,
): Promise<{ visited: number; skipped: SkippedMessage[] }> {
  const js = jetStreamOf(nc);
  const consumer = await (options.consumer?.() ?? orderedConsumer(js, stream, filter));
  let visited = 0;
  let lastSeq = 0;
  const skipped: SkippedMessage[] = [];
  const take = async (m: StreamMessage) => {
    lastSeq = m.info.streamSequence;
    const fence = options.fence;
    await fence?.see(m);
    const a = admit(m.subject, m.data, [type], options.roster, undefined, fence && ((message) => fence.judge(message, m)));
    if (a.ok) {
      visited++;
      await visit(a.message);
    } else {
      skipped.push({ subject: m.subject, seq: m.info.streamSequence, reason: `${a.reason}: ${a.detail}` });
      if (options.deadLetterAs) await deadLetter(js, m, a, options.deadLetterAs);
    }
  };
  try {
    let done = (await withTimeout(consumer.info(true), CALL_MS, `reading ${filter} from ${stream}`)).num_pending === 0;
    let emptyFetches = 0;
    while (!done) {
      const batch = await withTimeout(consumer.fetch({ max_messages: 500, expires: 2000 }), CALL_MS, `reading ${filter} from ${stream}`);
      // A fetch whose server died may never end on its own; close it well after its expiry.
      const guard = setTimeout(() => void batch.close(), 15_000);
      let got = 0;
      for await (const m of batch) {
        got++;
        await take(m);
        // `pending` counts what is left after this message for the filter at delivery time.
        if (m.info.pending === 0) {
          done = true;
          break;
        }
      }
      clearTimeout(guard);
      if (got > 0) emptyFetches = 0;
      else if ((await withTimeout(consumer.info(), CALL_MS, `reading ${filter} from ${stream}`)).num_pending === 0) done = true;
      else if (++emptyFetches >= MAX_EMPTY_FETCHES) {
        throw new IncompleteReadError(
          `reading ${filter} from ${stream}: messages are pending but ${MAX_EMPTY_FETCHES} fetches came back empty; is the stream's leader available?`,
          { retryable: true },
        );
      }
    }
    if (options.askLeader !== false) await readRestFromLeader(new LeaderReader(nc, stream, filter), () => lastSeq, take);
  } finally {
    await withTimeout(consumer.delete(), CALL_MS, "").catch(() => undefined);
  }
  return { visited, skipped };
}

/**
 * The consumer's end is its replica's: one that lags the stream leader for good (nats-server
 * 2.9.10 after a healed cut) ends the read early and says nothing is pending. So the leader is
 * asked for what follows the last message read, and the rest is read from it by sequence. A
 * reader that may not ask (a peer may not read others' verdicts, and STREAM.MSG.GET cannot be
 * narrowed to a filter) or gets no answer keeps the consumer's view, as before.
 */
async function readRestFromLeader(leader: LeaderReader, lastSeq: () => number, take: (m: StreamMessage) => Promise<void>): Promise<void> {
  const next = () => leader.nextAfter(lastSeq()).catch(() => undefined);
  for (let m = await next(); m; m = await next()) await take(m);
}
