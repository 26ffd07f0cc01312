/**
 * Asking the stream leader, not a replica, what a stream holds.
 *
 * A consumer reads one replica of its stream: the one on the node it was placed on. After a
 * network cut healed, nats-server 2.9.10 was seen to leave one replica of an R3 stream without
 * messages the leader had, for good (it never resynced it). A consumer placed there delivers
 * nothing of them, and its own `num_pending` is answered from the same replica: 0. So a reader
 * that has been quiet asks the leader instead, through `$JS.API.STREAM.MSG.GET.<stream>` with
 * `next_by_subj`: only the stream leader answers that API (unlike the direct get, which any
 * replica may answer), and 2.9.10 takes `next_by_subj`, wildcards included.
 */
import { jetstreamManager, type JetStreamManager, type MsgRequest, type StoredMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { withTimeout } from "../timeout.ts";
import type { StreamMessage } from "./message.ts";
import { CALL_MS } from "./ordered.ts";

/** Asks one stream's leader for messages on one filter subject (wildcards allowed). */
export class LeaderReader {
  private jsm?: JetStreamManager;

  constructor(
    private readonly nc: NatsConnection,
    readonly stream: string,
    readonly filter: string,
  ) {}

  /** The first message on the filter stored after `afterSeq`, as the leader has it; undefined when none. */
  async nextAfter(afterSeq: number): Promise<StreamMessage | undefined> {
    this.jsm ??= await jetstreamManager(this.nc);
    // The client's type lacks `next_by_subj` on this (non-direct) API, which the server takes.
    const query = { seq: afterSeq + 1, next_by_subj: this.filter } as unknown as MsgRequest;
    const stored = await withTimeout(this.jsm.streams.getMessage(this.stream, query), CALL_MS, `asking the leader of ${this.stream} for ${this.filter}`);
    return stored ? asStreamMessage(stored, this.stream) : undefined;
  }
}

/** A message read by sequence, shaped as a first delivery. */
function asStreamMessage(stored: StoredMsg, stream: string): StreamMessage {
  const headers = stored.header;
  return {
    subject: stored.subject,
    data: stored.data,
    headers: [...headers.keys()].length ? headers : undefined,
    info: { stream, streamSequence: stored.seq, deliveryCount: 1 },
  };
}
