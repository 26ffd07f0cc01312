/**
 * The AsyncAPI 3.0 document of the protocol: the NATS subjects of the JetStream streams, the KV
 * keys and object stores, their headers and payloads (referencing the JSON Schemas) and which
 * role sends and receives each. Addresses, headers and message ids come from the protocol's own
 * builders (./placeholders.ts), who does what from the server permissions (./roles.ts), so the
 * document says what the code does.
 */
import {
  BUCKETS,
  HEADER,
  MAX_MESSAGE_BYTES,
  MIN_SERVER,
  NAME_PATTERN,
  OBJECT_STORE,
  PROTOCOL_VERSION,
  STREAMS,
  claimedIdentity,
  headersFor,
  isCoordinatorMessage,
  memberKeys,
  messageIdFor,
  natsSubjects as nats,
  stateKeys,
  streamConfig,
  subjectFor,
  weightsBucket,
  type Message,
  type MessageType,
  type StreamKey,
} from "../../../protocol/mod.ts";
import type { Role } from "../permissions.ts";
import { KIND_DOCS, schemaFileName, type JsonSchema } from "./json-schemas.ts";
import { OTHER_PEER, PLACEHOLDERS as P, streamSamples, templated } from "./placeholders.ts";
import { accessOf, rolePermissions } from "./roles.ts";

/** The media type of every protocol payload. */
export const CONTENT_TYPE = "application/msgpack";
const SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12";
const ROLES: Role[] = ["peer", "coordinator", "observer"];
const NAME = NAME_PATTERN.source;

/** One channel: a subject (with a sample speaker), where it is stored and what it carries. */
interface ChannelSpec {
  id: string;
  /** The subject with `speaker` as the speaking identity; without one, the sample's own (a placeholder). */
  subject: (speaker?: string) => string;
  /** Whether the last token is the speaker's identity. */
  spoken: boolean;
  stream: string;
  title: string;
  description: string;
  message: JsonSchema;
  extra?: JsonSchema;
}

const PARAMETERS: Record<string, string> = {
  experiment: `The experiment's name (${NAME}).`,
  iteration: "The iteration number, decimal without leading zeros (0 to 1000000).",
  author: "The author of the candidates: the publishing peer's own name.",
  judge: "The judge: the publishing peer's own name.",
  peer: "The peer the message is by or about: for a peer's own messages, its own name.",
  instance: "One process serving the peer (its instance name).",
  reason: "The dead-letter reason, with '-' for '_' (e.g. identity-mismatch).",
  nuid: "The object chunk's nuid (NATS object store).",
};

const STREAM_OF: Record<string, StreamKey> = {
  prompt: "prompts",
  candidates: "candidates",
  verdict: "verdicts",
  pair: "pairs",
  evaluation: "evaluations",
  control: "control",
  dead_letter: "dead",
};

/** The field naming the speaker of a message whose kind has one. */
function speakerField(m: Message): string | undefined {
  const who = claimedIdentity(m);
  if (who === undefined) return undefined;
  return Object.entries(m).find(([k, value]) => value === who && k !== "experiment")?.[0];
}

const idOf = (m: Message) => (m.type === "control" ? `control_${m.event}` : m.type);

function payloadRef(kind: MessageType, fragment?: string): JsonSchema {
  return { schemaFormat: SCHEMA_FORMAT, schema: { $ref: `./schemas/${schemaFileName(kind)}${fragment ? `#/$defs/${fragment}` : ""}` } };
}

/** The headers a stream message carries, read off what headersFor and messageIdFor make of the sample. */
function headersSchema(m: Message): JsonSchema {
  const set: Record<string, string> = {};
  for (const [k, values] of headersFor(m)) set[k] = values[0]!;
  const properties: Record<string, JsonSchema> = {
    [HEADER.type]: { type: "string", const: set[HEADER.type], description: "The message kind ('control/<event>' for control events)." },
    [HEADER.experiment]: { type: "string", pattern: NAME, description: "The experiment." },
    [HEADER.protocol]: { type: "string", const: String(PROTOCOL_VERSION), description: "The protocol version." },
  };
  if (set[HEADER.iteration] !== undefined) properties[HEADER.iteration] = { type: "string", pattern: "^(0|[1-9][0-9]*)$", description: "The iteration." };
  if (set[HEADER.peer] !== undefined)
    properties[HEADER.peer] = { type: "string", pattern: NAME, description: "The identity the message claims (the subject's last token)." };
  const coordinator = isCoordinatorMessage(m);
  if (coordinator) {
    properties[HEADER.fence] = {
      type: "string",
      pattern: "^[0-9]+$",
      description:
        "The publishing coordinator's fencing token (its lease). Absent counts as 0; readers refuse a stale leader's messages (docs/protocol.md, Fencing).",
    };
  }
  properties["Nats-Msg-Id"] = {
    type: "string",
    description:
      "JetStream deduplication id: the logical id (the example), then '~' and 22 base64url characters of an HMAC-SHA256 of it when the publisher has credentials" +
      (coordinator ? ", then '#' and the fencing token." : "."),
    examples: [templated(messageIdFor(m))],
  };
  return { type: "object", properties, required: [...Object.keys(set), "Nats-Msg-Id"] };
}

function streamChannels(): ChannelSpec[] {
  return streamSamples().map((m) => {
    const field = speakerField(m);
    const key = STREAM_OF[m.type]!;
    const kind = m.type as MessageType;
    return {
      id: idOf(m),
      subject: (speaker) => subjectFor(field && speaker ? ({ ...m, [field]: speaker } as Message) : m),
      spoken: field !== undefined,
      stream: STREAMS[key].name,
      title: m.type === "control" ? `Control event ${m.event}` : KIND_DOCS[kind].title,
      description: `${m.type === "control" ? KIND_DOCS.control.description : KIND_DOCS[kind].description} Stored in the stream ${STREAMS[key].name}.`,
      message: {
        name: idOf(m),
        title: m.type === "control" ? `Control event ${m.event}` : KIND_DOCS[kind].title,
        contentType: CONTENT_TYPE,
        headers: headersSchema(m),
        payload: payloadRef(kind, m.type === "control" ? m.event : undefined),
      },
      extra: { "x-jetstream": streamBinding(key) },
    };
  });
}

function streamBinding(key: StreamKey): JsonSchema {
  const c = streamConfig(key);
  return {
    stream: c.name,
    subjects: c.subjects,
    storage: c.storage,
    retention: c.retention,
    discard: c.discard,
    duplicateWindowSeconds: Number(c.duplicate_window) / 1e9,
  };
}

function record(kind: MessageType, bucket: string, key: (speaker?: string) => string, spoken: boolean): ChannelSpec {
  return {
    id: `kv_${kind}`,
    subject: (speaker) => nats.kv(bucket, key(speaker)),
    spoken,
    stream: nats.kvStream(bucket),
    title: `${KIND_DOCS[kind].title} (KV)`,
    description: `${KIND_DOCS[kind].description} A write is a publish to this subject; readers get or watch the key. No Pop-* headers.`,
    message: { name: kind, title: KIND_DOCS[kind].title, contentType: CONTENT_TYPE, payload: payloadRef(kind) },
    extra: { "x-nats-kv": { bucket, key: templated(key()) } },
  };
}

function kvChannels(): ChannelSpec[] {
  const exp = P.experiment;
  return [
    record("experiment", BUCKETS.state, () => stateKeys.config(exp), false),
    record("progress", BUCKETS.state, () => stateKeys.progress(exp), false),
    record("iteration", BUCKETS.state, () => stateKeys.iteration(exp, P.iteration), false),
    record("lease", BUCKETS.state, () => stateKeys.lease(exp), false),
    record("model", BUCKETS.state, (peer = P.peer) => stateKeys.model(exp, peer), true),
    record("member", BUCKETS.members, (peer = P.peer) => memberKeys.instance(exp, peer, P.instance), true),
  ];
}

function objectChannel(id: string, bucket: (speaker?: string) => string, spoken: boolean, title: string, description: string): ChannelSpec {
  return {
    id,
    subject: (speaker) => nats.objectChunks(bucket(speaker), P.nuid),
    spoken,
    stream: nats.objectStream(bucket()),
    title,
    description: `${description} NATS object store: chunks of ${"`"}$O.<bucket>.C.<nuid>${"`"}, metadata (JSON, NATS's own) on ${"`"}$O.<bucket>.M.<base64url name>${"`"}.`,
    message: { name: `${id}_chunk`, title: `${title}: one chunk`, contentType: "application/octet-stream", payload: { type: "string", format: "binary" } },
    extra: { "x-nats-object-store": { bucket: templated(bucket()) } },
  };
}

function objectChannels(): ChannelSpec[] {
  return [
    objectChannel(
      "objects_blobs",
      () => OBJECT_STORE,
      false,
      "Prompt pools and images",
      "Objects 'pool/<name>' and 'pool/<name>/<chunk>' hold a msgpack prompt pool (pool.schema.json); images are stored under their 'sha256-<hex>' name as PNG, JPEG or raw RGB8 bytes, as the ImageRef says.",
    ),
    objectChannel(
      "objects_weights",
      (peer = P.peer) => weightsBucket(P.experiment, peer),
      true,
      "A peer's weights",
      "A peer's own bucket: objects 'model/<experiment>/<peer>/<modelVersion>' hold its weights in its backend's format (opaque to the protocol); the model record names the object and its sha256.",
    ),
  ];
}

/** The whole AsyncAPI document, as a JSON value. */
export function asyncApiDocument(): JsonSchema {
  const perms = rolePermissions();
  const specs = [...streamChannels(), ...kvChannels(), ...objectChannels()];
  const channels: Record<string, JsonSchema> = {};
  const operations: Record<string, JsonSchema> = {};
  const messages: Record<string, JsonSchema> = {};
  for (const spec of specs) {
    const address = templated(spec.subject());
    const params = [...address.matchAll(/\{([a-z]+)\}/gi)].map((m) => m[1]!);
    const messageId = spec.message.name as string;
    messages[messageId] = spec.message;
    channels[spec.id] = {
      address,
      title: spec.title,
      description: spec.description,
      messages: { [messageId]: { $ref: `#/components/messages/${messageId}` } },
      ...(params.length ? { parameters: Object.fromEntries(params.map((p) => [p, { description: PARAMETERS[p] ?? p }])) } : {}),
      ...spec.extra,
    };
    for (const role of ROLES) {
      const own = accessOf(perms[role], spec.stream, spec.subject(P.peer));
      const other = spec.spoken ? accessOf(perms[role], spec.stream, spec.subject(OTHER_PEER)) : own;
      for (const action of ["send", "receive"] as const) {
        if (!own[action] && !other[action]) continue;
        const scope = own[action] && !other[action] ? "own" : "any";
        const durables = [...new Set([...own.durables, ...other.durables])].map(templated);
        operations[`${role}_${action}_${spec.id}`] = {
          action,
          channel: { $ref: `#/channels/${spec.id}` },
          messages: [{ $ref: `#/channels/${spec.id}/messages/${messageId}` }],
          title: `The ${role} ${action}s: ${spec.title}`,
          tags: [{ name: role }],
          "x-pop-role": role,
          ...(spec.spoken ? { "x-pop-scope": scope } : {}),
          ...(action === "receive" && durables.length ? { "x-jetstream-durables": durables } : {}),
        };
      }
    }
  }
  return {
    asyncapi: "3.0.0",
    info: {
      title: "Panel-of-Peers protocol",
      version: String(PROTOCOL_VERSION),
      description:
        `The messages of a Panel-of-Peers experiment over NATS JetStream (nats-server >= ${MIN_SERVER.join(".")}). Every payload is one msgpack map ` +
        `(at most ${MAX_MESSAGE_BYTES} bytes on a stream) validated by the JSON Schemas under ./schemas/. ` +
        "Operations say which role sends or receives what, as the server permissions allow it; 'x-pop-scope: own' means only on subjects ending with its own name. " +
        "Generated by `npm run schemas` from protocol/ and deploy/ops/permissions.ts; read docs/protocol.md first.",
      tags: [
        { name: "peer", description: "A member of the panel: answers, judges, trains; speaks only as itself." },
        { name: "coordinator", description: "Feeds prompts, votes, publishes pairs and the lifecycle events; one leader at a time (fenced)." },
        { name: "observer", description: "Reads everything of an experiment (pop watch, report); writes nothing." },
      ],
    },
    defaultContentType: CONTENT_TYPE,
    servers: {
      nats: {
        host: "localhost:4222",
        protocol: "nats",
        description: "Any nats-server with JetStream enabled; streams and buckets are created by the coordinator.",
      },
    },
    channels,
    operations,
    components: { messages },
  };
}
