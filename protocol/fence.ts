/**
 * Fencing the coordinator's publications: never two acting leaders.
 *
 * Several coordinator processes may run; one holds the lease (the `lease` state key, a
 * {@link LeaseRecord}) and publishes. Each holder has a fencing token, higher on every takeover,
 * and every coordinator publication carries it in the {@link HEADER.fence} header (headers keep
 * the message schemas unchanged). A taker-over first reads the last sequence of each stream the
 * coordinator writes to and records them in the lease with its token: a boundary. From then on
 * a message with a lower token stored after its stream's boundary is stale, published by a
 * leader that had lost the lead (a paused process waking up), and readers refuse it
 * (dead-lettered as `stale_leader`). What a lower token stored before the boundary is history:
 * the new leader replayed it and carried on from it, so every reader keeps it too.
 *
 * The rule is a function of the message (token, stream, sequence) and the lease's boundaries, so
 * every reader, live or replaying, decides alike, in any delivery order. Coordinator messages
 * (prompts, pairs, the coordinator's control events) without a token count as token 0: before
 * the first boundary they are an older run's, after it they are refused. An experiment without a
 * lease record (stored before leases existed) is not fenced, so old runs stay readable.
 *
 * A reader learns of a new boundary by watching the lease key; a message with a token newer than
 * any it knows makes it read the lease again first. The one gap: a stale message that reaches a
 * reader before the lease write that fences it (a leader paused for longer than the lease,
 * resuming in the instant of the takeover) is admitted by that reader alone. The leader's own
 * clock keeps that rare: it stops publishing at 0.8 × leaseMs since its last renewal was sent.
 */
import { KvWatchInclude, type KV } from "@nats-io/kv";
import type { MsgHdrs } from "@nats-io/transport-node";
import { HEADER } from "./envelope.ts";
import { recordOf, readRecord } from "./records.ts";
import type { LeaseRecord, Message } from "./schemas.ts";
import { stateKeys } from "./state.ts";
import { COORDINATOR_EVENTS } from "./subjects.ts";

const COORDINATOR_EVENT_SET: ReadonlySet<string> = new Set(COORDINATOR_EVENTS);

/** Whether only the coordinator publishes messages like this one (so it must carry a token). */
export function isCoordinatorMessage(message: Message): boolean {
  return message.type === "prompt" || message.type === "pair" || (message.type === "control" && COORDINATOR_EVENT_SET.has(message.event));
}

/** The fencing token a message carries in its headers, or undefined. */
export function fenceOf(headers: MsgHdrs | undefined): number | undefined {
  const value = headers?.get(HEADER.fence);
  if (!value) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Where a delivery sits: its stream, sequence and headers. */
export interface Placed {
  headers?: MsgHdrs;
  info: { stream: string; streamSequence: number };
}

/**
 * What is stale about a message under a lease (undefined when nothing): the pure rule above.
 * Messages that carry no token and are not the coordinator's kind are not judged.
 */
export function staleness(lease: LeaseRecord | undefined, message: Message, at: Placed): string | undefined {
  if (!lease) return undefined;
  const carried = fenceOf(at.headers);
  if (carried === undefined && !isCoordinatorMessage(message)) return undefined;
  const token = carried ?? 0;
  for (const b of lease.fences) {
    if (b.token <= token) continue;
    const after = b.after[at.info.stream] ?? 0;
    if (at.info.streamSequence > after) {
      return carried === undefined
        ? `a coordinator message without a fencing token, stored at ${at.info.stream} #${at.info.streamSequence} after leases began (#${after})`
        : `fencing token ${token} is stale: token ${b.token} (${b.instance}) took the lead after ${at.info.stream} #${after}, and this was stored at #${at.info.streamSequence}`;
    }
  }
  return undefined;
}

/**
 * A reader's view of the lease, kept current by a watch, that judges deliveries by
 * {@link staleness}. Open one per experiment per process; readers share it.
 */
export class FenceView {
  private lease?: LeaseRecord;
  private stopWatch?: () => void;

  private constructor(
    private readonly kv: KV,
    private readonly key: string,
  ) {}

  /** Reads the lease once (enough for a bounded read of stored messages). */
  static async read(kv: KV, experiment: string): Promise<FenceView> {
    const view = new FenceView(kv, stateKeys.lease(experiment));
    await view.refresh();
    return view;
  }

  /** Reads the lease and keeps watching it until {@link stop}. */
  static async watch(kv: KV, experiment: string): Promise<FenceView> {
    const view = await FenceView.read(kv, experiment);
    const iter = await kv.watch({ key: view.key, include: KvWatchInclude.UpdatesOnly });
    view.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        const r = recordOf(e, "lease");
        if (r) view.take(r);
      }
    })().catch(() => undefined);
    return view;
  }

  /** The newest lease this view has seen. */
  get current(): LeaseRecord | undefined {
    return this.lease;
  }

  async refresh(): Promise<void> {
    const r = await readRecord(this.kv, this.key, "lease");
    if (r) this.take(r);
  }

  private take(r: LeaseRecord): void {
    if (!this.lease || r.token >= this.lease.token) this.lease = r;
  }

  /**
   * Before judging a delivery: a token newer than this view's lease means the view is behind;
   * read the lease again.
   */
  async see(at: Placed): Promise<void> {
    const token = fenceOf(at.headers);
    if (token !== undefined && (!this.lease || token > this.lease.token)) await this.refresh();
  }

  /** What is stale about a delivered message, or undefined. */
  judge(message: Message, at: Placed): string | undefined {
    return staleness(this.lease, message, at);
  }

  stop(): void {
    this.stopWatch?.();
  }
}
