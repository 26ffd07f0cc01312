/**
 * The JetStream topology of the PoP loop: streams, durable consumers, KV buckets and the object
 * store. `ensureTopology` creates what is missing and leaves what matches untouched, so every
 * process may call it at start-up.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { kvmOf, managerOf, objmOf } from "./jetstream.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { PopError, TopologyConflictError, UnsupportedServerError, isPermissionViolation } from "./errors.ts";
import { DEFAULT_LIMITS, OBJECT_CHUNK_BYTES, type Limits } from "./limits.ts";
import { checkMinimum, requireFeatures, serverVersion, type ServerFeature } from "./server.ts";
import { checkName, natsSubjects, subjects, wildcards } from "./subjects.ts";

/** Stream names and what they hold. */
export const STREAMS = {
  prompts: { name: "POP_PROMPTS", subjects: [wildcards.kind("*", "prompt")], description: "Prompts of each iteration" },
  candidates: { name: "POP_CANDIDATES", subjects: [wildcards.kind("*", "cand")], description: "Candidate batches, one per prompt and author" },
  verdicts: { name: "POP_VERDICTS", subjects: [wildcards.kind("*", "verdict")], description: "Verdicts, one per judge and prompt (covering its authors)" },
  pairs: { name: "POP_PAIRS", subjects: [wildcards.kind("*", "pair")], description: "Preference pairs assembled by mean voting" },
  evaluations: { name: "POP_EVALS", subjects: [wildcards.kind("*", "eval")], description: "Benchmark results per member and iteration" },
  control: { name: "POP_CONTROL", subjects: [wildcards.kind("*", "ctl")], description: "Experiment lifecycle events" },
  dead: { name: "POP_DEAD", subjects: [wildcards.kind("*", "dead")], description: "Messages that could not be processed, with the reason" },
} as const;
export type StreamKey = keyof typeof STREAMS;

/** KV buckets and the object store. */
export const BUCKETS = {
  /** `<exp>.<peer>.<instance>` → Member, refreshed by heartbeats. */
  members: "pop_members",
  /** Experiment config and coordinator progress, `<exp>.*` keys. */
  state: "pop_state",
} as const;
/**
 * Prompt pools and images (by content hash): written only by coordinator keys
 * (deploy/ops/permissions.ts), read by everyone. Weights written before weights had owners are
 * here too, still readable.
 */
export const OBJECT_STORE = "pop_blobs";

/**
 * A peer's own object bucket for its weights: only that peer's key may write it, and it has a
 * byte limit of its own (limits.weightsBytes). Names are lower-case, so the upper-case `_P_`
 * cannot be part of either and the name is unambiguous.
 */
export function weightsBucket(exp: string, peer: string): string {
  return `pop_w_${checkName(exp, "experiment")}_P_${checkName(peer, "peer")}`;
}

/** Options of the topology; the defaults suit one server on one host. */
export interface TopologyOptions {
  /**
   * Stream and bucket replicas, applied when the topology is created (default:
   * {@link defaultReplicas}, 3 on a cluster, 1 on a lone server). Existing streams and buckets
   * keep theirs: a process that does not say never changes them, and one that asks for a
   * different number is refused.
   */
  replicas?: number;
  /**
   * Window in which a republished message id is dropped as a duplicate. Default 24 h: longer
   * than an iteration of real models (hours), so a restarted coordinator or actor that
   * republishes stores nothing twice. The server keeps the ids of this window in memory
   * (about 100 bytes each).
   */
  duplicateWindowMs?: number;
  /** Discard messages older than this (0 = keep forever, the default: runs are records). */
  maxAgeMs?: number;
  /** Compress stream storage (needs nats-server >= 2.10). */
  compression?: boolean;
  /** Attach metadata to streams (needs nats-server >= 2.10). */
  metadata?: Record<string, string>;
  /**
   * Byte, message and size limits (protocol/limits.ts). Given: existing streams and buckets are
   * updated to them (the coordinator passes its experiment config's). Absent: new ones get the
   * defaults and existing ones keep theirs, so a peer never undoes what the coordinator set.
   */
  limits?: Limits;
}

export type EnsureOutcome = "created" | "unchanged" | "updated";

/** What `ensureTopology` did to each part. */
export interface TopologyReport {
  server: string;
  streams: Record<string, EnsureOutcome>;
  buckets: Record<string, EnsureOutcome>;
}

const MS = 1_000_000;

export function streamConfig(key: StreamKey, options: TopologyOptions = {}): Partial<StreamConfig> & { name: string } {
  const s = STREAMS[key];
  const config: Partial<StreamConfig> & { name: string } = {
    name: s.name,
    subjects: [...s.subjects],
    description: s.description,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    ...(options.replicas !== undefined ? { num_replicas: options.replicas } : {}),
    duplicate_window: (options.duplicateWindowMs ?? 24 * 3600_000) * MS,
    max_age: (options.maxAgeMs ?? 0) * MS,
    ...streamLimits(options.limits ?? DEFAULT_LIMITS),
  };
  if (options.compression) (config as Record<string, unknown>).compression = "s2";
  if (options.metadata) (config as Record<string, unknown>).metadata = options.metadata;
  return config;
}

/**
 * A protocol stream's limits. Full, it refuses new messages (discard new) rather than evicting
 * stored ones: a flood can stop the experiment, never erase its record. No per-subject limit: a
 * member's own subjects span every iteration number, so it would not bound a flood, while a
 * 1,000,000-prompt iteration legitimately puts a million messages on one author's subject.
 */
function streamLimits(l: Limits): Pick<StreamConfig, "discard" | "max_bytes" | "max_msgs" | "max_msg_size"> {
  return { discard: DiscardPolicy.New, max_bytes: l.streamBytes ?? -1, max_msgs: l.streamMessages, max_msg_size: l.messageBytes };
}

/** The limits of a KV bucket's stream: bytes (reserved by the server, so kept small) and value size. KV buckets discard new already. */
function bucketLimits(maxBytes: number, l: Limits): Pick<StreamConfig, "max_bytes" | "max_msg_size"> {
  return { max_bytes: maxBytes, max_msg_size: l.messageBytes };
}

/**
 * The limits of an object bucket's stream (discard new, as nats.js makes them): at most one
 * chunk (plus room for metadata) a message, and as many messages as `maxBytes` of chunks, which
 * bounds its bytes without the server reserving them on its disk.
 */
export function objectLimits(maxBytes: number): Pick<StreamConfig, "max_msgs" | "max_msg_size"> {
  return { max_msgs: Math.ceil(maxBytes / OBJECT_CHUNK_BYTES), max_msg_size: OBJECT_CHUNK_BYTES + 8 * 1024 };
}

function requiredFeatures(options: TopologyOptions): ServerFeature[] {
  const f: ServerFeature[] = [];
  if (options.compression) f.push("streamCompression");
  if (options.metadata) f.push("streamMetadata");
  return f;
}

/**
 * The replicas new streams and buckets get when nobody says: 3 when the connected server is part
 * of a cluster (its INFO names one), else 1. One place decides, so the streams, the buckets and
 * every peer's weights bucket of a cluster (a stretched one across sites: deploy/ops/site-cluster.ts)
 * are all R3 without any process being told. A cluster here has 3 nodes or more: JetStream needs
 * a quorum, and a 2-node cluster survives no loss.
 */
export function defaultReplicas(nc: NatsConnection): number {
  return nc.info?.cluster ? 3 : 1;
}

/** Creates every stream, bucket and the object store the loop needs; idempotent. */
export async function ensureTopology(nc: NatsConnection, options: TopologyOptions = {}): Promise<TopologyReport> {
  const version = serverVersion(nc);
  checkMinimum(version);
  requireFeatures(version, requiredFeatures(options), "topology options");
  const jsm = await openManager(nc);
  const report: TopologyReport = { server: version.join("."), streams: {}, buckets: {} };
  for (const key of Object.keys(STREAMS) as StreamKey[]) {
    report.streams[STREAMS[key].name] = await ensureStream(jsm, streamConfig(key, options), options.limits !== undefined, defaultReplicas(nc));
  }
  const replicas = options.replicas ?? defaultReplicas(nc);
  const asked = options.replicas;
  const l = options.limits ?? DEFAULT_LIMITS;
  const enforce = options.limits !== undefined;
  const kvm = kvmOf(nc);
  const members = bucketLimits(l.membersBytes, l);
  report.buckets[BUCKETS.members] = await ensureBucket(
    jsm,
    natsSubjects.kvStream(BUCKETS.members),
    () =>
      kvm.create(BUCKETS.members, {
        history: 1,
        replicas,
        description: "PoP membership and heartbeats",
        max_bytes: members.max_bytes,
        maxValueSize: members.max_msg_size,
      }),
    asked,
    enforce ? members : undefined,
  );
  const state = bucketLimits(l.stateBytes, l);
  report.buckets[BUCKETS.state] = await ensureBucket(
    jsm,
    natsSubjects.kvStream(BUCKETS.state),
    () =>
      kvm.create(BUCKETS.state, {
        history: 5,
        replicas,
        description: "PoP experiment configs and coordinator progress",
        max_bytes: state.max_bytes,
        maxValueSize: state.max_msg_size,
      }),
    asked,
    enforce ? state : undefined,
  );
  const objm = objmOf(nc);
  const blobs = objectLimits(l.blobsBytes);
  report.buckets[OBJECT_STORE] = await ensureBucket(
    jsm,
    natsSubjects.objectStream(OBJECT_STORE),
    () => objm.create(OBJECT_STORE, { replicas, description: "PoP prompt pools and images by content hash", ...blobs }),
    asked,
    enforce ? blobs : undefined,
  );
  return report;
}

/**
 * Creates a peer's weights bucket ({@link weightsBucket}) with its limit, or updates the limit of
 * the existing one. The coordinator does it for every member it sees (a peer's key may not
 * create streams, so that no peer sets its own share); a peer on a server without credentials
 * does it itself before its first upload.
 */
export async function ensureWeightsBucket(nc: NatsConnection, exp: string, peer: string, limits: Limits = DEFAULT_LIMITS): Promise<EnsureOutcome> {
  const jsm = await openManager(nc);
  const bucket = weightsBucket(exp, peer);
  const want = objectLimits(limits.weightsBytes);
  return ensureBucket(
    jsm,
    natsSubjects.objectStream(bucket),
    () => objmOf(nc).create(bucket, { description: `PoP weights of ${peer} in ${exp}, written by it alone`, replicas: defaultReplicas(nc), ...want }),
    undefined,
    want,
  );
}

/** A JetStream manager, or a clear error when the server has JetStream off. */
export async function openManager(nc: NatsConnection): Promise<JetStreamManager> {
  try {
    return await managerOf(nc);
  } catch (error) {
    throw new UnsupportedServerError("JetStream is not available on this server: start nats-server with -js (or 'jetstream {}' in its config)", {
      cause: error,
      retryable: true,
    });
  }
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && (error.code === 404 || /not found/i.test(error.message));
}

const UPDATABLE_STREAM_FIELDS = ["subjects", "description", "duplicate_window", "max_age"] as const;
/** Compared and updated only when the caller gives limits (see {@link TopologyOptions.limits}). */
const LIMIT_FIELDS = ["discard", "max_bytes", "max_msgs", "max_msg_size"] as const;
const FIXED_STREAM_FIELDS = ["storage", "retention"] as const;

async function ensureStream(
  jsm: JetStreamManager,
  want: Partial<StreamConfig> & { name: string },
  enforceLimits: boolean,
  newReplicas: number,
): Promise<EnsureOutcome> {
  let have: StreamConfig;
  try {
    have = (await jsm.streams.info(want.name)).config;
  } catch (error) {
    if (!isNotFound(error)) throw new PopError(`cannot read stream ${want.name}`, { cause: error, retryable: true });
    try {
      await jsm.streams.add({ num_replicas: newReplicas, ...want });
    } catch (addError) {
      // A peer's or observer's key may not create streams (deploy/ops/permissions.ts): the set-up is the coordinator's.
      if (isPermissionViolation(addError)) {
        throw new PopError(
          `stream ${want.name} does not exist and this connection's credentials may not create it: start the coordinator (or pop pool) with the coordinator's key first`,
          { cause: addError, retryable: true },
        );
      }
      throw addError;
    }
    return "created";
  }
  for (const field of FIXED_STREAM_FIELDS) {
    if (want[field] !== undefined && have[field] !== want[field]) {
      throw new TopologyConflictError(
        `stream ${want.name} exists with ${field}=${String(have[field])}, but ${String(want[field])} is required; it cannot be changed in place. Delete the stream (losing its data) or use another server.`,
      );
    }
  }
  if (want.num_replicas !== undefined && have.num_replicas !== want.num_replicas) {
    throw new TopologyConflictError(
      `stream ${want.name} has ${have.num_replicas} replica(s), but ${want.num_replicas} were asked for; replicas are set when the topology is created. Leave the replica count out to use the existing streams.`,
    );
  }
  const fields = enforceLimits ? [...UPDATABLE_STREAM_FIELDS, ...LIMIT_FIELDS] : UPDATABLE_STREAM_FIELDS;
  const differs = fields.some((f) => want[f] !== undefined && JSON.stringify(have[f]) !== JSON.stringify(want[f]));
  if (!differs) return "unchanged";
  const update = { ...have, ...want };
  // Left as they are unless limits were given (a peer's defaults must not undo the coordinator's).
  if (!enforceLimits) for (const f of LIMIT_FIELDS) (update as Record<string, unknown>)[f] = have[f];
  await jsm.streams.update(want.name, update);
  return "updated";
}

async function ensureBucket(
  jsm: JetStreamManager,
  streamName: string,
  create: () => Promise<unknown>,
  replicas?: number,
  limits?: Partial<StreamConfig>,
): Promise<EnsureOutcome> {
  try {
    const config = (await jsm.streams.info(streamName)).config;
    const have = config.num_replicas;
    if (replicas !== undefined && have !== replicas) {
      throw new TopologyConflictError(`${streamName} has ${have} replica(s), but ${replicas} were asked for; replicas are set when the topology is created.`);
    }
    const changed = limits && Object.entries(limits).some(([k, v]) => (config as unknown as Record<string, unknown>)[k] !== v);
    if (!changed) return "unchanged";
    await jsm.streams.update(streamName, { ...config, ...limits });
    return "updated";
  } catch (error) {
    if (error instanceof TopologyConflictError) throw error;
    if (!isNotFound(error)) throw new PopError(`cannot read ${streamName}`, { cause: error, retryable: true });
  }
  await create();
  return "created";
}

/** Durable consumers of the loop: whose they are and what they read. */
export const consumers = {
  /** A peer's prompts; every process of the peer shares it, so replicas split the work. */
  peerPrompts: (exp: string, peer: string) => durable(STREAMS.prompts.name, `${exp}-${peer}-prompts`, subjects.all(exp, "prompt"), 15_000),
  /**
   * The candidates a peer judges (its own are skipped by the handler). A judge holds a prompt's
   * batches unacknowledged until the prompt's other authors have answered (actors/judging.ts), so
   * it may hold many while a slow member catches up: a low limit would stop its deliveries.
   */
  peerCandidates: (exp: string, peer: string) => durable(STREAMS.candidates.name, `${exp}-${peer}-cands`, subjects.all(exp, "cand"), 15_000, 20_000),
  /** Lifecycle events a peer acts on (training when an iteration closes). */
  peerControl: (exp: string, peer: string) => durable(STREAMS.control.name, `${exp}-${peer}-ctl`, subjects.all(exp, "ctl"), 15_000),
  /** The coordinator's view of candidates (which verdicts to wait for). */
  coordinatorCandidates: (exp: string) => durable(STREAMS.candidates.name, `${exp}-coord-cands`, subjects.all(exp, "cand"), 30_000),
  coordinatorVerdicts: (exp: string) => durable(STREAMS.verdicts.name, `${exp}-coord-verdicts`, subjects.all(exp, "verdict"), 30_000),
  coordinatorControl: (exp: string) => durable(STREAMS.control.name, `${exp}-coord-ctl`, subjects.all(exp, "ctl"), 30_000),
};

/** Deliveries of a message before it is dead-lettered (retryable failures only; others go at once). */
export const MAX_DELIVER = 50;

/** A durable consumer: the stream it reads and its config. */
export interface ConsumerSpec {
  stream: string;
  config: Partial<ConsumerConfig> & { durable_name: string; filter_subject: string };
}

/**
 * Ack waits are short because inboxes signal progress on what they hold (`working()`): a
 * crashed process's messages come back within seconds, a slow model call never times out.
 */
function durable(stream: string, name: string, filter: string, ackWaitMs: number, maxAckPending = 1000): ConsumerSpec {
  return {
    stream,
    config: {
      durable_name: name,
      filter_subject: filter,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWaitMs * MS,
      // With the inbox's backoff (up to 5 min between tries) this rides out a model server
      // that is down for about three hours before a message is dead-lettered.
      max_deliver: MAX_DELIVER,
      max_ack_pending: maxAckPending,
    },
  };
}

/** Creates a durable consumer, or checks that the existing one reads the same subjects. */
export async function ensureConsumer(jsm: JetStreamManager, spec: ConsumerSpec): Promise<EnsureOutcome> {
  if ("filter_subjects" in spec.config) {
    throw new UnsupportedServerError("use one filter_subject: nats-server 2.9 silently drops an array of filter_subjects");
  }
  try {
    const have = (await jsm.consumers.info(spec.stream, spec.config.durable_name)).config;
    if (have.filter_subject !== spec.config.filter_subject) {
      throw new TopologyConflictError(
        `consumer ${spec.config.durable_name} on ${spec.stream} reads '${have.filter_subject}', not '${spec.config.filter_subject}'. Delete it to re-create it.`,
      );
    }
    if (have.ack_wait === spec.config.ack_wait && have.max_deliver === spec.config.max_deliver && have.max_ack_pending === spec.config.max_ack_pending) {
      return "unchanged";
    }
    await jsm.consumers.update(spec.stream, spec.config.durable_name, {
      ack_wait: spec.config.ack_wait,
      max_deliver: spec.config.max_deliver,
      max_ack_pending: spec.config.max_ack_pending,
    });
    return "updated";
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  await jsm.consumers.add(spec.stream, spec.config);
  return "created";
}
