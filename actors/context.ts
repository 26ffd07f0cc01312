/**
 * What every part of a running actor shares: connections, buckets, the configuration, the
 * model's version and caches. The roles' own state lives in the roles (actors/roles.ts).
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { ObjectStore } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import {
  FenceView,
  BUCKETS,
  getImage,
  openBlobs,
  readRecord,
  stateKeys,
  type ExperimentConfig,
  type ImageRef,
  type IterationRecord,
  PopError,
  jetStreamOf,
  kvmOf,
} from "../protocol/mod.ts";
import { CostMeter } from "./cost.ts";
import type { Evaluator, ImageInput, ModelBackend, PromptInput } from "./models/contract.ts";

/** Bytes of images kept in memory: the tiny world's are 3 KB, a photo several MB. */
const IMAGE_CACHE_BYTES = 256 * 1024 * 1024;

export class PeerContext {
  readonly js: JetStreamClient;
  /** Current weights' version; changes after training or after loading a replica's weights. */
  modelVersion = "";
  /** The iteration whose pairs the current weights include (0: the starting checkpoint). */
  modelIteration = 0;
  /** What this process's model calls cost, by iteration and phase; every role's calls go through it. */
  readonly cost = new CostMeter();
  private readonly images = new Map<string, ImageInput>();
  /** Images being fetched: answering and judging the same prompt at once fetch it once. */
  private readonly fetching = new Map<string, Promise<ImageInput>>();
  private imageBytes = 0;
  private readonly iterations = new Map<number, IterationRecord>();

  private constructor(
    readonly nc: NatsConnection,
    readonly experiment: string,
    readonly peer: string,
    readonly instance: string,
    readonly backend: ModelBackend,
    readonly log: Logger,
    readonly state: KV,
    readonly members: KV,
    readonly blobs: ObjectStore,
    readonly config: ExperimentConfig,
    /** How this peer is benchmarked after each iteration; none: it is not. */
    readonly evaluator: Evaluator | undefined,
    /** The coordinator's lease as seen here: stale coordinator messages are not counted (protocol/fence.ts). */
    readonly fence: FenceView,
  ) {
    this.js = jetStreamOf(nc);
  }

  static async open(options: {
    nc: NatsConnection;
    experiment: string;
    peer: string;
    instance: string;
    backend: ModelBackend;
    log: Logger;
    config: ExperimentConfig;
    evaluator?: Evaluator;
  }): Promise<PeerContext> {
    const kvm = kvmOf(options.nc);
    const [state, members, blobs] = await Promise.all([kvm.open(BUCKETS.state), kvm.open(BUCKETS.members), openBlobs(options.nc)]);
    const fence = await FenceView.watch(state, options.experiment);
    return new PeerContext(
      options.nc,
      options.experiment,
      options.peer,
      options.instance,
      options.backend,
      options.log,
      state,
      members,
      blobs,
      options.config,
      options.evaluator,
      fence,
    );
  }

  /** The record of an iteration (who takes part); undefined while the coordinator has not opened it. */
  async iteration(n: number): Promise<IterationRecord | undefined> {
    const cached = this.iterations.get(n);
    if (cached) return cached;
    const record = await readRecord(this.state, stateKeys.iteration(this.experiment, n), "iteration");
    if (!record) return undefined;
    this.iterations.set(n, record);
    return record;
  }

  /** Whether this peer takes part in iteration `n` (a late joiner waits for the next one). */
  async takesPart(n: number): Promise<boolean> {
    const record = await this.iteration(n);
    if (!record) throw new PopError(`iteration ${n} has no record yet`, { retryable: true });
    return record.peers.includes(this.peer);
  }

  /** The model-ready form of a prompt: its images fetched (and cached) from the object store. */
  async promptInput(promptId: string, question: string, refs: ImageRef[]): Promise<PromptInput> {
    const images: ImageInput[] = [];
    for (const ref of refs) {
      images.push(this.images.get(ref.hash) ?? (await this.fetchImage(ref)));
    }
    return { id: promptId, question, images };
  }

  /** Fetches an image into the cache, once however many callers ask for it meanwhile. */
  private fetchImage(ref: ImageRef): Promise<ImageInput> {
    let pending = this.fetching.get(ref.hash);
    if (!pending) {
      pending = getImage(this.blobs, ref)
        .then((img) => {
          this.images.set(ref.hash, img);
          this.imageBytes += img.data.length;
          for (const [hash, old] of this.images) {
            if (this.imageBytes <= IMAGE_CACHE_BYTES || this.images.size <= 1) break;
            this.images.delete(hash);
            this.imageBytes -= old.data.length;
          }
          return img;
        })
        .finally(() => this.fetching.delete(ref.hash));
      this.fetching.set(ref.hash, pending);
    }
    return pending;
  }
}

/** A stable 31-bit seed from strings, so the same work gets the same samples after a restart. */
export function seedOf(...parts: (string | number)[]): number {
  let h = 2166136261;
  for (const ch of parts.join("|")) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) & 0x7fffffff;
}
