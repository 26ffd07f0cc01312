/** The ordered (ephemeral) consumers that following and reading back a stream use. */
import { DeliverPolicy, type Consumer, type JetStreamClient } from "@nats-io/jetstream";
import { withTimeout } from "../timeout.ts";

/**
 * The bound on each JetStream call of a reader: while a cluster re-elects leaders these calls were
 * seen to hang past their own request timeout, and a consumer placed on a dead peer is best given
 * up soon.
 */
export const CALL_MS = 8_000;

/** An ordered consumer of `filter` on `stream`: from the stream's start, or from just after `afterSeq`. */
export function orderedConsumer(js: JetStreamClient, stream: string, filter: string, afterSeq = 0): Promise<Consumer> {
  // A single string filter becomes `filter_subject`, which nats-server 2.9 understands.
  const config = afterSeq
    ? { filter_subjects: filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 }
    : { filter_subjects: filter, deliver_policy: DeliverPolicy.All };
  return withTimeout(js.consumers.get(stream, config), CALL_MS, `creating a consumer of ${filter} on ${stream}`);
}
