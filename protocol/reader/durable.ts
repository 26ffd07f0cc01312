/**
 * A work-queue inbox's durable consumer, made again when the server has lost it. A site cut
 * while a peer was creating its durables (chaos site-cut, seed 105) left the peer pulling, every
 * stall, from durables that no longer existed ("consumer not found"): it never heard its
 * iteration close. The first create had timed out and the retry was answered by its own node,
 * cut off from the cluster, whose view was apparently rolled back when the cut healed. So before
 * pulling again the inbox asks for its durable, and one the server answers is gone (JetStream
 * error 10014) is created again, warned about once each time.
 *
 * What a durable made again delivers: nothing of the lost one's ack state survives, so it
 * starts where this inbox can vouch that everything earlier was settled: at the lowest stream
 * sequence it received and had not yet acked or dead-lettered (or just after the last it
 * received, when it holds nothing). Work settled earlier is not replayed, and what is replayed
 * (settled between that point and the last received) is handled idempotently: answers and
 * verdicts carry fixed message ids the streams deduplicate, training is skipped once the model
 * record has the iteration. Deliveries another process of the same peer held unsettled are
 * found by catch-up (actors/catch-up.ts), as after any lost delivery. An inbox that has received
 * nothing yet makes it again from its spec unchanged (from the stream's start), as a fresh start
 * of the peer does.
 */
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, type Consumer, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { withTimeout } from "../timeout.ts";
import { ensureConsumer, type ConsumerSpec } from "../topology.ts";
import type { ReaderLog } from "./log.ts";
import { CALL_MS } from "./ordered.ts";

/** Whether the server answered that the consumer does not exist (by JetStream error code, not text). */
export function isConsumerGone(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound;
}

/** The stream sequences an inbox has received and not yet settled: where a durable made again starts. */
export class Unsettled {
  private readonly open = new Set<number>();
  private last = 0;

  /** A delivery arrived (a redelivery of one held is the same sequence). */
  received(seq: number): void {
    this.open.add(seq);
    if (seq > this.last) this.last = seq;
  }

  /**
   * Acked or dead-lettered: never wanted again. A nak'ed delivery stays open (it comes back; if
   * another process of the peer settles it, a durable made again merely starts earlier).
   */
  settled(seq: number): void {
    this.open.delete(seq);
  }

  /** The first sequence a durable made again must deliver; undefined when nothing was received. */
  resumeAt(): number | undefined {
    if (this.last === 0) return undefined;
    let lowest = this.last + 1;
    for (const seq of this.open) if (seq < lowest) lowest = seq;
    return lowest;
  }
}

/** A durable consumer, and what to read it through now. */
export class Durable {
  private warned = false;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly spec: ConsumerSpec,
    private current: Consumer,
    private readonly log: ReaderLog,
  ) {}

  /** Creates the durable if needed (or checks it), as at an inbox's start. */
  static async open(js: JetStreamClient, jsm: JetStreamManager, spec: ConsumerSpec, log: ReaderLog): Promise<Durable> {
    await ensureConsumer(jsm, spec);
    return new Durable(js, jsm, spec, await js.consumers.get(spec.stream, spec.config.durable_name), log);
  }

  /** The consumer to read through. */
  get consumer(): Consumer {
    return this.current;
  }

  /**
   * Before pulling again: the durable as the server has it, made again from `resumeAt` (see the
   * module's comment) when it is gone. True when it was made again. Other failures are thrown, for
   * the caller to try again later.
   */
  async check(resumeAt: number | undefined): Promise<boolean> {
    const { stream, config } = this.spec;
    try {
      await withTimeout(this.current.info(false), CALL_MS, `asking for ${config.durable_name} on ${stream}`);
      return false;
    } catch (error) {
      if (!isConsumerGone(error)) throw error;
    }
    // Once per loss, however many tries making it again takes.
    if (!this.warned) {
      this.warned = true;
      this.log.warn(
        { consumer: config.durable_name, stream, filter: config.filter_subject, resumeAt: resumeAt ?? "the stream's start" },
        "this durable consumer no longer exists on the server; making it again",
      );
    }
    const again: ConsumerSpec =
      resumeAt === undefined ? this.spec : { stream, config: { ...config, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAt } };
    // Another process of this peer may have made it again first (from its own point): that one is read.
    await withTimeout(ensureConsumer(this.jsm, again), CALL_MS, `making ${config.durable_name} on ${stream} again`);
    this.current = await withTimeout(this.js.consumers.get(stream, config.durable_name), CALL_MS, `reading ${config.durable_name} on ${stream}`);
    this.warned = false;
    return true;
  }
}
