/**
 * The coordinator: one or several processes of the coordinator's identity, at one site or
 * several. Each waits for the lease (coordinator/lease.ts); whoever holds it runs a term
 * (coordinator/term.ts), which carries on from JetStream state exactly as a restart does; the
 * others stand by and take over when the lease lapses. A leader that loses its lease stops
 * publishing and stands by again.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  BUCKETS,
  FenceView,
  STREAMS,
  PopError,
  canRetry,
  ensureTopology,
  kvmOf,
  openManager,
  readRecord,
  stateKeys,
  type ExperimentConfig,
  type LeaseRecord,
} from "../protocol/mod.ts";
import { CoordinatorLease, LeaseLostError } from "./lease.ts";
import { CoordinatorSetupError, Term, type IterationFigures } from "./term.ts";

export { CoordinatorSetupError, RecordTooLargeError } from "./term.ts";
export { LeaseLostError } from "./lease.ts";

export interface CoordinatorOptions {
  nc: NatsConnection;
  experiment: string;
  log: Logger;
  /** Stored as the experiment's config if none exists yet; an existing config wins. */
  config?: ExperimentConfig;
  /** How often deadlines and heartbeats are checked (default 500 ms). */
  tickMs?: number;
  /** This process's name in the lease (default: host, pid and a random suffix). */
  instance?: string;
}

/**
 * An error a server that is not (yet) available gives (a timeout, no responders, JetStream
 * "temporarily unavailable", a lost connection), or a PopError marked retryable; not a bug,
 * a refusal or a bad config, which still end the process.
 */
function isServerTrouble(error: unknown): boolean {
  if (!canRetry(error)) return false;
  if (error instanceof PopError) return error.retryable;
  const e = error as { name?: string; message?: string };
  return /timeout|no ?responders|jetstream|unavailable|connection|disconnect/i.test(`${e?.name ?? ""} ${e?.message ?? ""}`);
}

/** The streams the coordinator publishes to: a takeover's boundary lists their ends. */
const FENCED_STREAMS = [STREAMS.prompts.name, STREAMS.pairs.name, STREAMS.control.name];

export class Coordinator {
  private term?: Term;
  private lease?: CoordinatorLease;
  private finished = false;
  /** This process's name in the lease. */
  readonly instance: string;

  constructor(private readonly options: CoordinatorOptions) {
    this.instance =
      options.instance ??
      `${hostname()
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, "-")
        .slice(0, 40)}-${process.pid}-${randomBytes(3).toString("hex")}`;
  }

  /** The iteration the leading term is at (undefined while standing by). */
  get iteration(): number | undefined {
    return this.term?.iteration;
  }

  get done(): boolean {
    return this.finished;
  }

  /** The open iteration's progress while this process leads (undefined while standing by). */
  get figures(): IterationFigures | undefined {
    return this.term?.figures;
  }

  /** The lease while this process leads. */
  get leading(): LeaseRecord | undefined {
    return this.lease && !this.lease.lost.aborted ? this.lease.current : undefined;
  }

  /**
   * Stands by until it holds the lease, leads until the experiment is done, the lease is lost
   * (then stands by again) or `signal` aborts.
   */
  async run(signal?: AbortSignal): Promise<void> {
    const { nc, experiment, log } = this.options;
    await ensureTopology(nc);
    const kv = await kvmOf(nc).open(BUCKETS.state);
    const leaseMs = await this.leaseMs(kv);
    const jsm = await openManager(nc);
    const fence = await FenceView.watch(kv, experiment);
    let retryAfter = 0;
    try {
      while (!signal?.aborted && !this.finished) {
        const lease = await CoordinatorLease.acquire(
          {
            kv,
            experiment,
            instance: this.instance,
            leaseMs,
            log,
            boundary: async () => Object.fromEntries(await Promise.all(FENCED_STREAMS.map(async (s) => [s, (await jsm.streams.info(s)).state.last_seq]))),
          },
          signal,
        );
        if (!lease) break;
        await fence.refresh();
        lease.start();
        this.lease = lease;
        const term = new Term({ ...this.options, lease, fence });
        this.term = term;
        try {
          await term.run(signal);
          if (term.done) this.finished = true;
        } catch (error) {
          if (error instanceof LeaseLostError) log.warn({ why: error.message }, "no longer leads; standing by");
          else if (isServerTrouble(error) && !signal?.aborted) {
            // A term that could not start or go on (a cluster electing leaders after a site was
            // lost or cut: timeouts, "temporarily unavailable") ends as a restart would; this
            // process hands the lease back and competes for it again from JetStream state.
            log.warn({ err: error }, "could not lead (is the NATS cluster available?); handing the lease back and trying again");
            retryAfter = 2000;
          } else throw error;
        } finally {
          this.term = undefined;
          this.lease = undefined;
          // A clean end (done, shut down) hands the lease over at once; a lost one is not ours.
          await lease.stop(true);
        }
        if (retryAfter) await new Promise((r) => setTimeout(r, retryAfter));
        retryAfter = 0;
      }
    } finally {
      fence.stop();
    }
  }

  /** The lease length: from the stored config, or the one this process would store. */
  private async leaseMs(kv: KV): Promise<number> {
    const stored = await readRecord(kv, stateKeys.config(this.options.experiment), "experiment");
    const config = stored ?? this.options.config;
    if (!config)
      throw new CoordinatorSetupError(`experiment '${this.options.experiment}' has no config on this server; pass one (pop coordinator --config FILE)`);
    return config.coordination.leaseMs;
  }
}
