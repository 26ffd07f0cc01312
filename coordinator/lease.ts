/**
 * The coordinator's lease: which of several coordinator processes leads (protocol/fence.ts has
 * the readers' side).
 *
 * - acquire: `kv.create` of the lease key when there is none (token 1).
 * - renew: a revision-checked `kv.update` every leaseMs / 3.
 * - lapse: nats-server 2.9 has no per-key TTL and hosts' clocks differ, so a standby judges by
 *   its own monotonic clock: the lease has lapsed once its revision has stayed the same for
 *   leaseMs since the standby first saw that revision (or at once when the holder released it).
 * - takeover: a revision-checked update with token + 1 and a boundary (the last sequence of each
 *   stream the coordinator writes to); of two standbys only one update wins.
 * - fenced: a leader whose renewal finds another revision, or that has not renewed for 0.8 ×
 *   leaseMs since its last successful renewal was sent, stops publishing at once ({@link fence}
 *   throws) and becomes a standby. A standby waits a whole leaseMs from after that write, so the
 *   old leader has stopped before anyone else starts.
 */
import type { KV, KvEntry } from "@nats-io/kv";
import type { Logger } from "pino";
import { PROTOCOL_VERSION, PopError, encode, isKeyExists, recordOf, stateKeys, type LeaseRecord } from "../protocol/mod.ts";

/** This process does not (or no longer) hold the lease: it must not publish. Not retryable within this term. */
export class LeaseLostError extends PopError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, retryable: false });
  }
}

/** Of leaseMs: a leader publishes only within this much of its last renewal. */
const ACTING_FRACTION = 0.8;

export interface LeaseOptions {
  kv: KV;
  experiment: string;
  /** This process's instance id (unique per process). */
  instance: string;
  leaseMs: number;
  log: Logger;
  /** The last sequence of each stream the coordinator publishes to, read just before a takeover. */
  boundary: () => Promise<Record<string, number>>;
  /** Monotonic clock in ms (tests may replace it). */
  now?: () => number;
}

const monotonic = () => performance.now();

/** A held lease: renews itself until lost or released. */
export class CoordinatorLease {
  private revision: number;
  /** Monotonic time at which the last successful renewal (or the takeover) was sent. */
  private renewedAt: number;
  private timer?: NodeJS.Timeout;
  private lostWhy?: string;
  private readonly lostController = new AbortController();
  private renewing?: Promise<void>;

  private constructor(
    private readonly o: LeaseOptions,
    private record: LeaseRecord,
    revision: number,
    sentAt: number,
  ) {
    this.revision = revision;
    this.renewedAt = sentAt;
  }

  /**
   * Waits as a standby until this process holds the lease (or `signal` aborts: undefined). Logs
   * who leads while it waits.
   */
  static async acquire(o: LeaseOptions, signal?: AbortSignal): Promise<CoordinatorLease | undefined> {
    const now = o.now ?? monotonic;
    const key = stateKeys.lease(o.experiment);
    const poll = Math.max(50, Math.min(1000, o.leaseMs / 10));
    let seen: { revision: number; at: number } | undefined;
    let announced: string | undefined;
    while (!signal?.aborted) {
      let entry: KvEntry | null;
      try {
        entry = await o.kv.get(key);
      } catch (error) {
        o.log.warn({ err: error }, "could not read the coordinator lease; trying again");
        await sleep(poll, signal);
        continue;
      }
      const current = recordOf(entry, "lease");
      if (!entry || !current) {
        const won = await CoordinatorLease.write(o, undefined, 0, now);
        if (won) return won;
      } else {
        if (seen?.revision !== entry.revision) seen = { revision: entry.revision, at: now() };
        const lapsed = current.released || now() - seen.at >= o.leaseMs;
        if (lapsed) {
          const won = await CoordinatorLease.write(o, current, entry.revision, now);
          if (won) return won;
          seen = undefined;
        } else if (announced !== `${current.instance}:${current.token}`) {
          announced = `${current.instance}:${current.token}`;
          o.log.info({ leader: current.instance, token: current.token, since: current.since }, "standing by: another coordinator leads");
        }
      }
      await sleep(poll, signal);
    }
    return undefined;
  }

  /** Takes the lease over from `previous` at `revision` (0: creates it); undefined when another write won. */
  private static async write(o: LeaseOptions, previous: LeaseRecord | undefined, revision: number, now: () => number): Promise<CoordinatorLease | undefined> {
    const token = (previous?.token ?? 0) + 1;
    const at = Date.now();
    let after: Record<string, number>;
    try {
      after = await o.boundary();
    } catch (error) {
      o.log.warn({ err: error }, "could not read the streams' ends for a takeover; trying again");
      return undefined;
    }
    const record: LeaseRecord = {
      v: PROTOCOL_VERSION,
      type: "lease",
      experiment: o.experiment,
      instance: o.instance,
      token,
      since: at,
      renewedAt: at,
      released: false,
      fences: [...(previous?.fences ?? []), { token, instance: o.instance, since: at, after }],
    };
    const key = stateKeys.lease(o.experiment);
    const sentAt = now();
    try {
      const rev = revision === 0 ? await o.kv.create(key, encode(record)) : await o.kv.update(key, encode(record), revision);
      o.log.info(
        { token, previous: previous && { instance: previous.instance, token: previous.token } },
        previous ? "took over the coordinator lease" : "holds the coordinator lease",
      );
      return new CoordinatorLease(o, record, rev, sentAt);
    } catch (error) {
      if (!isKeyExists(error)) o.log.warn({ err: error }, "could not write the coordinator lease; trying again");
      return undefined;
    }
  }

  /** The lease as last written. */
  get current(): LeaseRecord {
    return this.record;
  }

  /** Aborts when the lease is lost. */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** Starts renewing every leaseMs / 3. */
  start(): void {
    const every = Math.max(20, Math.floor(this.o.leaseMs / 3));
    this.timer = setInterval(() => {
      if (!this.renewing) this.renewing = this.renew().finally(() => (this.renewing = undefined));
    }, every);
  }

  /**
   * The fencing token to publish with, if this process may still act: else throws
   * {@link LeaseLostError} (and the lease counts as lost).
   */
  fence(): number {
    const now = this.o.now ?? monotonic;
    if (!this.lostWhy && now() - this.renewedAt > ACTING_FRACTION * this.o.leaseMs) {
      this.lose(`not renewed for ${Math.round(now() - this.renewedAt)} ms (lease ${this.o.leaseMs} ms)`);
    }
    if (this.lostWhy) throw new LeaseLostError(`this coordinator no longer leads: ${this.lostWhy}`);
    return this.record.token;
  }

  /** One renewal (exposed for tests; the timer calls it). */
  async renew(): Promise<void> {
    if (this.lostWhy) return;
    const now = this.o.now ?? monotonic;
    const sentAt = now();
    const record = { ...this.record, renewedAt: Date.now() };
    try {
      this.revision = await this.o.kv.update(stateKeys.lease(this.o.experiment), encode(record), this.revision);
      this.record = record;
      this.renewedAt = sentAt;
    } catch (error) {
      if (isKeyExists(error)) return this.lose("the lease was taken over (its revision changed)");
      this.o.log.warn({ err: error }, "could not renew the coordinator lease");
    }
    // Past the acting limit with no renewal: stop now rather than at the next publish.
    try {
      this.fence();
    } catch {
      // lost; recorded
    }
  }

  /** Stops renewing; `release` lets a standby take over at once (a clean shutdown). */
  async stop(release: boolean): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
    if (!release || this.lostWhy) return;
    this.lostWhy = "released";
    try {
      await this.o.kv.update(stateKeys.lease(this.o.experiment), encode({ ...this.record, released: true, renewedAt: Date.now() }), this.revision);
    } catch {
      // Taken over meanwhile, or the server is gone: a standby waits out the lease instead.
    }
  }

  /** Stops acting for good: the timer stops, {@link lost} aborts. */
  private lose(why: string): void {
    if (this.lostWhy) return;
    this.lostWhy = why;
    clearInterval(this.timer);
    this.o.log.warn({ token: this.record.token, why }, "lost the coordinator lease; stopped publishing, standing by");
    this.lostController.abort(new LeaseLostError(`this coordinator no longer leads: ${why}`));
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
