/**
 * The stall watchdog's question for a durable consumer (the work-queue inbox), asked so that a
 * replica that lags cannot hide messages. A durable's leader reads its own node's replica of the
 * stream and answers `num_pending` from it: on a replica nats-server 2.9.10 failed to resync
 * after a cut, both say nothing waits while the stream leader holds more. So when the durable
 * says nothing is pending, the leader is asked for a message on its filter after the last one it
 * delivered; if there is one, and it was stored long enough ago that a current replica would
 * have it, the durable's leadership is moved to another replica before pulling again. Its
 * deliveries and acks must go through a consumer, so reading from the leader is no help here.
 */
import type { Consumer } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { withTimeout } from "../timeout.ts";
import type { ConsumerSpec } from "../topology.ts";
import { LeaderReader, stepDownConsumer } from "./leader.ts";
import type { ReaderLog } from "./log.ts";
import { CALL_MS } from "./ordered.ts";

/** How long a message may sit on the leader and not on a current replica (they apply it within milliseconds). */
export const REPLICA_GRACE_MS = 5_000;

/** A durable consumer's view checked against the stream leader's. */
export class DurableLag {
  private readonly leader: LeaderReader;
  /** What the last check found: the durable delivered through one sequence, the leader holds a later one. */
  private lagging?: { deliveredThrough: number; leaderHas: number };

  constructor(
    private readonly nc: NatsConnection,
    private readonly spec: ConsumerSpec,
    private readonly consumer: Consumer,
    private readonly log: ReaderLog,
    private readonly graceMs = REPLICA_GRACE_MS,
  ) {
    this.leader = new LeaderReader(nc, spec.stream, spec.config.filter_subject);
  }

  /** Messages waiting for the durable: its own count, or 1 when only the stream leader has them. */
  async waiting(): Promise<number> {
    const info = await withTimeout(this.consumer.info(false), CALL_MS, `asking ${this.spec.config.durable_name} what is pending`);
    if (info.num_pending > 0) return info.num_pending;
    const next = await this.leader.nextAfter(info.delivered.stream_seq);
    if (!next || Date.now() - next.storedAt < this.graceMs) return 0;
    this.lagging = { deliveredThrough: info.delivered.stream_seq, leaderHas: next.info.streamSequence };
    return 1;
  }

  /** Before pulling again: a durable found on a replica that lags is asked to elect another leader. */
  async move(): Promise<void> {
    const lagging = this.lagging;
    if (!lagging) return;
    this.lagging = undefined;
    const { stream, config } = this.spec;
    this.log.warn(
      { consumer: config.durable_name, stream, filter: config.filter_subject, ...lagging },
      "this durable's replica of the stream lags the stream leader (it says nothing is pending); moving its leader to another replica",
    );
    await stepDownConsumer(this.nc, stream, config.durable_name).catch((error: unknown) =>
      this.log.warn({ err: error, consumer: config.durable_name, stream }, "could not move the durable's leader; pulling again"),
    );
  }
}
