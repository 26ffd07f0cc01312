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
import type { JetStreamManager, MsgRequest, StoredMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { PopError } from "../errors.ts";
import { managerOf } from "../jetstream.ts";
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
  async nextAfter(afterSeq: number): Promise<LeaderMessage | undefined> {
    this.jsm ??= await managerOf(this.nc);
    // The client's type lacks `next_by_subj` on this (non-direct) API, which the server takes.
    const query = { seq: afterSeq + 1, next_by_subj: this.filter } as unknown as MsgRequest;
    const stored = await withTimeout(this.jsm.streams.getMessage(this.stream, query), CALL_MS, `asking the leader of ${this.stream} for ${this.filter}`);
    return stored ? asStreamMessage(stored, this.stream) : undefined;
  }
}

/** A message the leader holds: as a reader handles it, and when it was stored. */
export type LeaderMessage = StreamMessage & { storedAt: number };

/** A message read by sequence, shaped as a first delivery. */
function asStreamMessage(stored: StoredMsg, stream: string): LeaderMessage {
  const headers = stored.header;
  return {
    subject: stored.subject,
    data: stored.data,
    headers: [...headers.keys()].length ? headers : undefined,
    info: { stream, streamSequence: stored.seq, deliveryCount: 1 },
    storedAt: stored.time.getTime(),
  };
}

/** The server would not move a durable consumer's leader (an R1 consumer has nowhere to go). */
export class ConsumerStepDownError extends PopError {}

/**
 * Asks the server to elect another of a durable consumer's replicas its leader
 * (`CONSUMER.LEADER.STEPDOWN`, not in nats.js): a durable's leader reads its own node's replica
 * of the stream, so one on a replica that lags is moved rather than pulled from again.
 */
export async function stepDownConsumer(nc: NatsConnection, stream: string, consumer: string): Promise<void> {
  const prefix = (await managerOf(nc)).getOptions().apiPrefix;
  const reply = await withTimeout(
    nc.request(`${prefix}.CONSUMER.LEADER.STEPDOWN.${stream}.${consumer}`, undefined, { timeout: CALL_MS }),
    CALL_MS,
    `asking ${consumer} on ${stream} to elect another leader`,
  );
  const answer = reply.json<{ success?: boolean; error?: { description?: string } }>();
  if (!answer.success) {
    throw new ConsumerStepDownError(`${consumer} on ${stream} kept its leader: ${answer.error?.description ?? "no reason given"}`, { retryable: true });
  }
}
