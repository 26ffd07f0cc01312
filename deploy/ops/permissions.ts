/**
 * What each identity of an experiment may publish and subscribe to on a NATS server, as
 * subject lists with the reason for every entry. The speaker's identity is the last token of
 * every protocol subject (protocol/subjects.ts), so these lists bind credentials to identities:
 * a peer's key can speak only as that peer.
 *
 * Everything JetStream does is a publish to a subject: API requests (`$JS.API.…`), acks
 * (`$JS.ACK.…`), KV writes (`$KV.<bucket>.<key>`), object chunks (`$O.<bucket>.…`) and flow
 * control replies (`$JS.FC.…`). Replies and deliveries come back on the client's inboxes.
 * The lists below name every such subject the code in actors/, coordinator/ and deploy/ uses
 * with nats.js v3 against nats-server 2.9.
 *
 * Objects have owners: prompt pools and images are in the coordinator's bucket (only coordinator
 * keys write it), each peer's weights in that peer's own bucket (only its key writes it). An
 * object bucket is a stream of its own with subjects `$O.<bucket>.C.<nuid>` (chunks) and
 * `$O.<bucket>.M.<base64 name>` (metadata), so the bucket token is what binds writes to a key.
 */
import {
  BUCKETS,
  COORDINATOR_EVENTS,
  OBJECT_STORE,
  PEER_EVENTS,
  STREAMS,
  consumers,
  memberKeys,
  natsSubjects as nats,
  stateKeys,
  subjects,
  wildcards,
  weightsBucket,
  type ConsumerSpec,
} from "../../protocol/mod.ts";

/** One subject of a permission list and why it is there (written as a comment in auth.conf). */
export interface Rule {
  subject: string;
  why: string;
}

/** The three kinds of identity. */
export type Role = "peer" | "coordinator" | "observer";

/** One identity's permissions. Deny wins over allow on the server. */
export interface RolePermissions {
  identity: string;
  role: Role;
  publish: { allow: Rule[]; deny: Rule[] };
  subscribe: { allow: Rule[]; deny: Rule[] };
}

const KV_MEMBERS = nats.kvStream(BUCKETS.members);
const KV_STATE = nats.kvStream(BUCKETS.state);
const OBJ = nats.objectStream(OBJECT_STORE);
/** Every stream of the topology, the KV buckets' and the object store's included. */
const ALL_STREAMS = [...Object.values(STREAMS).map((s) => s.name), KV_MEMBERS, KV_STATE, OBJ];

const r = (subject: string, why: string): Rule => ({ subject, why });

/** What every connecting identity needs to use JetStream at all. */
function jetStreamBasics(): Rule[] {
  return [
    r(nats.info, "jetstreamManager() checks the account has JetStream"),
    ...ALL_STREAMS.map((s) => r(nats.stream("INFO", s), "ensureTopology, Kvm/Objm.open and ordered consumers look the stream up")),
  ];
}

/**
 * Ordered (ephemeral) consumers: the read-back of a stream (readStored, the coordinator's
 * collectors, the demo's progress) and, pushed, KV watches and object reads. nats.js names them
 * `<random>_<n>`, so the consumer name must be `*` (broad); the filter is part of the create
 * subject (the server checks it matches the config), which keeps reads inside `filter`.
 */
function orderedReads(stream: string, filter: string, why: string, push = false): Rule[] {
  const rules = [
    r(nats.consumer("CREATE", stream, "*", filter), `${why}: create an ordered consumer (random name, so '*'; the filter is fixed)`),
    r(nats.consumer("INFO", stream, "*"), `${why}: pending counts and heartbeat checks of that consumer`),
    r(nats.consumer("DELETE", stream, "*"), `${why}: remove it when done (else it lingers 5 min)`),
  ];
  if (push) rules.push(r(nats.flowControl(stream), `${why}: answer the server's flow control on the pushed consumer`));
  else rules.push(r(nats.consumer("MSG.NEXT", stream, "*"), `${why}: pull the next batch`));
  return rules;
}

/** A durable consumer of one identity: created, looked up, pulled and acked by name only. */
function durableUse(spec: ConsumerSpec, why: string): Rule[] {
  const { stream } = spec;
  const { durable_name: name, filter_subject: filter } = spec.config;
  return [
    r(nats.consumer("CREATE", stream, name, filter), `${why}: create or update this durable consumer (ensureConsumer)`),
    r(nats.consumer("INFO", stream, name), `${why}: look it up`),
    r(nats.consumer("MSG.NEXT", stream, name), `${why}: pull from it`),
    r(nats.acks(stream, name), `${why}: ack, nak, term and progress ('working') its deliveries`),
    // protocol/reader/durable-lag.ts: a durable whose replica lags says nothing is pending.
    r(nats.stream("MSG.GET", stream), `${why}: ask the stream leader what it holds past this durable (BROAD: the subject is in the request body)`),
    r(nats.consumer("LEADER.STEPDOWN", stream, name), `${why}: move this durable's leader off a replica that lags`),
  ];
}

/** Another identity's durable consumer: never create, delete or pull from it (the latter steals its deliveries). */
function durableDeny(spec: ConsumerSpec, owner: string): Rule[] {
  const { stream } = spec;
  const name = spec.config.durable_name;
  return [
    r(nats.consumer("CREATE", stream, name, ">"), `${owner}'s durable consumer: not to be re-created or changed`),
    r(nats.consumer("DELETE", stream, name), `${owner}'s durable consumer: not to be deleted`),
    r(nats.consumer("MSG.NEXT", stream, name), `${owner}'s durable consumer: pulling would steal its deliveries`),
    r(nats.acks(stream, name), `${owner}'s deliveries: not to be acked by anyone else`),
  ];
}

function peerDurables(exp: string, peer: string): ConsumerSpec[] {
  return [consumers.peerPrompts(exp, peer), consumers.peerCandidates(exp, peer), consumers.peerControl(exp, peer)];
}

/** Denies touching the durable consumers of every peer but `except`. */
function othersDurables(exp: string, peers: string[], except?: string): Rule[] {
  return peers.filter((p) => p !== except).flatMap((p) => peerDurables(exp, p).flatMap((spec) => durableDeny(spec, p)));
}

/** The coordinator's durable consumers. */
function coordinatorDurables(exp: string): ConsumerSpec[] {
  return [consumers.coordinatorCandidates(exp), consumers.coordinatorVerdicts(exp), consumers.coordinatorControl(exp)];
}

/**
 * Denies touching the coordinator's durable consumers: the ordered reads' `*` consumer names
 * would otherwise let a peer or the observer pull (steal) its deliveries, delete or re-create them.
 */
function coordinatorDurablesDeny(exp: string): Rule[] {
  return coordinatorDurables(exp).flatMap((spec) => durableDeny(spec, "the coordinator"));
}

/** Reading the stored objects of `buckets`: images of prompts, the pool, weights. */
function objectReads(buckets: string[]): Rule[] {
  return buckets.flatMap((bucket) => {
    const stream = nats.objectStream(bucket);
    return [
      r(nats.stream("INFO", stream), `open ${bucket} (Objm.open looks the stream up)`),
      // Object names are base64 in one subject token, so no prefix of a name can be matched.
      r(nats.stream("MSG.GET", stream), `read an object's metadata and chunks in ${bucket} (ObjectStore.info, getBlob)`),
      ...orderedReads(stream, nats.objectChunks(bucket, "*"), `read a large object's chunks in ${bucket} (the library's getBlob)`, true),
    ];
  });
}

/** Every peer's weights bucket of the experiment. */
const weightsBuckets = (exp: string, peers: string[]) => peers.map((p) => weightsBucket(exp, p));

/**
 * Reading KV keys. nats.js v3's `Kvm.open` binds without looking the bucket up, so `get` uses
 * STREAM.MSG.GET with the key in the request body: no subject can narrow it to keys (BROAD).
 * DIRECT.GET carries the key in the subject; it is listed, scoped, for readers that open the
 * bucket with `allow_direct` (the buckets are created with it).
 */
function kvReads(bucket: string, keys: string, why: string): Rule[] {
  return [
    r(nats.stream("MSG.GET", nats.kvStream(bucket)), `${why} (BROAD: any key of the bucket, the key is in the request body)`),
    r(nats.directGet(nats.kvStream(bucket), nats.kv(bucket, keys)), `${why} (direct get: the key is in the subject)`),
  ];
}

/** Reading everything of one experiment: its streams, state and membership (also watched), objects. */
function experimentReads(exp: string, peers: string[]): Rule[] {
  return [
    ...Object.values(STREAMS).flatMap((s) => orderedReads(s.name, wildcards.experiment(exp), `read ${s.name}`)),
    // protocol/reader/leader.ts: a quiet follower asks the stream leader what its replica may lack.
    ...Object.values(STREAMS).map((s) =>
      r(
        nats.stream("MSG.GET", s.name),
        `a quiet follower of ${s.name} asks the stream leader what it missed (BROAD: the subject is in the request body; the account holds this one experiment)`,
      ),
    ),
    ...kvReads(BUCKETS.state, stateKeys.all(exp), "read config, progress, iteration and model records (kv.create reads too)"),
    ...kvReads(BUCKETS.members, memberKeys.all(exp), "read membership records"),
    ...orderedReads(KV_MEMBERS, nats.kv(BUCKETS.members, memberKeys.all(exp)), "watch the members (heartbeats)", true),
    ...orderedReads(KV_STATE, nats.kv(BUCKETS.state, stateKeys.all(exp)), "watch the state bucket", true),
    ...objectReads([OBJECT_STORE, ...weightsBuckets(exp, peers)]),
  ];
}

const INBOX: Rule = r(nats.inboxes, "replies to every request (JetStream API, publish acks, KV reads) and consumer deliveries arrive on inboxes");

/**
 * Narrows an identity's inboxes to its own (natsSubjects.privateInbox of its public key, the
 * prefix deploy/ops/nats-options.ts connects with): with `_INBOX.>` any key could read every
 * reply in the account, other judges' verdicts delivered to their consumers included.
 */
export function withPrivateInbox(p: RolePermissions, publicKey: string): RolePermissions {
  const own = r(
    `${nats.privateInbox(publicKey)}.>`,
    "its own inbox: replies to its requests (JetStream API, publish acks, KV reads) and its consumers' deliveries",
  );
  const allow = p.subscribe.allow.map((rule) => (rule.subject === INBOX.subject ? own : rule));
  return { ...p, subscribe: { ...p.subscribe, allow } };
}

/**
 * A peer: speaks only as itself. It publishes its candidates, verdicts, evaluations, its own
 * control events, dead letters, its membership records, its model record and weights; uses its
 * three durable consumers; reads the pairs, state and objects it needs.
 */
export function peerPermissions(exp: string, peer: string, peers: string[] = [peer]): RolePermissions {
  const allow: Rule[] = [
    r(wildcards.spokenBy(exp, "cand", peer), "its candidate batches"),
    r(wildcards.spokenBy(exp, "verdict", peer), "its verdicts"),
    r(wildcards.spokenBy(exp, "eval", peer), "its evaluation results"),
    ...PEER_EVENTS.map((e) => r(subjects.control(exp, e, peer), `its ${e} events`)),
    r(wildcards.dead(exp), "dead letters of what its consumers refused (any reason)"),
    // memberKeys.instance(exp, peer, <instance>): one token per process.
    r(nats.kv(BUCKETS.members, memberKeys.ofPeer(exp, peer)), "its processes' membership records (heartbeat put, delete on leaving)"),
    r(nats.kv(BUCKETS.state, stateKeys.model(exp, peer)), "its model record, the commit point of training"),
    // Its own bucket only (created by the coordinator with its share): nobody else's objects.
    r(nats.objectChunks(weightsBucket(exp, peer), "*"), "chunks of its weights, in its own bucket"),
    r(nats.objectMeta(weightsBucket(exp, peer), "*"), "metadata of its weights, in its own bucket"),
    r(nats.stream("PURGE", nats.objectStream(weightsBucket(exp, peer))), "free the chunks of its own replaced or failed upload (nats.js put)"),
    ...jetStreamBasics(),
    ...peerDurables(exp, peer).flatMap((spec) => durableUse(spec, spec.config.durable_name)),
    ...orderedReads(STREAMS.pairs.name, wildcards.anyIteration(exp, "pair"), "read an iteration's pairs to train on"),
    r(nats.stream("MSG.GET", STREAMS.pairs.name), "ask the stream leader for pairs its read's replica lacks (BROAD: the subject is in the request body)"),
    // actors/catch-up.ts: what this peer should have answered and judged, against what it did.
    ...orderedReads(STREAMS.prompts.name, wildcards.anyIteration(exp, "prompt"), "catch up: the open iteration's prompts"),
    ...orderedReads(STREAMS.candidates.name, wildcards.anyIteration(exp, "cand"), "catch up: the members' candidates of the open iteration"),
    ...orderedReads(STREAMS.verdicts.name, wildcards.spokenBy(exp, "verdict", peer), "catch up: its own verdicts"),
    ...kvReads(BUCKETS.state, stateKeys.all(exp), "read the experiment config, iteration records and its model record"),
    ...orderedReads(KV_STATE, nats.kv(BUCKETS.state, stateKeys.model(exp, peer)), "watch its model record (weights trained by its other processes)", true),
    ...orderedReads(KV_STATE, nats.kv(BUCKETS.state, stateKeys.lease(exp)), "watch the coordinator's lease (fencing tokens of stale leaders)", true),
    ...objectReads([OBJECT_STORE, weightsBucket(exp, peer)]),
  ];
  const deny: Rule[] = [
    r(wildcards.kind("*", "prompt"), "prompts are the coordinator's"),
    r(wildcards.kind("*", "pair"), "pairs are the coordinator's"),
    ...COORDINATOR_EVENTS.map((e) => r(wildcards.control("*", e), "the coordinator's control event")),
    // The ordered reads above take any consumer name, and a filter token '*' also matches a
    // durable's literal '>' filter: the other peers' durables are denied by name.
    ...othersDurables(exp, peers, peer),
    ...coordinatorDurablesDeny(exp),
  ];
  return { identity: peer, role: "peer", publish: { allow, deny }, subscribe: { allow: [INBOX], deny: [] } };
}

/**
 * The coordinator: feeds prompts, publishes pairs and its control events, keeps the state
 * bucket, reads everything of the experiment. Its key is also the one that sets a server up
 * (the topology, `pop pool`, the experiment config), so it may create and update the streams.
 */
export function coordinatorPermissions(exp: string, peers: string[]): RolePermissions {
  const allow: Rule[] = [
    r(wildcards.anyIteration(exp, "prompt"), "prompts"),
    r(wildcards.anyIteration(exp, "pair"), "preference pairs"),
    ...COORDINATOR_EVENTS.map((e) => r(subjects.control(exp, e), e)),
    r(wildcards.control(exp, "peer_left", "*"), "peer_left for members whose heartbeats lapsed"),
    r(wildcards.dead(exp), "dead letters of what its collectors refused"),
    r(nats.kv(BUCKETS.state, stateKeys.config(exp)), "the experiment config"),
    r(nats.kv(BUCKETS.state, stateKeys.progress(exp)), "its progress"),
    r(nats.kv(BUCKETS.state, stateKeys.iterations(exp)), "iteration records"),
    r(nats.kv(BUCKETS.state, stateKeys.lease(exp)), "the coordinator lease (acquire, renew, take over, release)"),
    r(nats.objectChunks(OBJECT_STORE, "*"), "chunks of the prompt pool and images (pop pool, the demo)"),
    r(nats.objectMeta(OBJECT_STORE, "*"), "metadata of the prompt pool and images"),
    r(nats.stream("PURGE", OBJ), "free the chunks of a replaced object (pop pool --replace)"),
    ...jetStreamBasics(),
    ...ALL_STREAMS.map((s) => r(nats.stream("CREATE", s), "ensureTopology creates the topology on a fresh server")),
    ...ALL_STREAMS.map((s) => r(nats.stream("UPDATE", s), "ensureTopology updates a stream whose settings or limits changed")),
    // Never written by the coordinator: it only creates them, with each member's share.
    ...weightsBuckets(exp, peers).map((b) => r(nats.stream("CREATE", nats.objectStream(b)), `create ${b}, a member's weights bucket, with its limit`)),
    ...weightsBuckets(exp, peers).map((b) => r(nats.stream("UPDATE", nats.objectStream(b)), `set the limit of ${b} from the experiment config`)),
    ...experimentReads(exp, peers),
  ];
  return {
    identity: "coordinator",
    role: "coordinator",
    publish: { allow, deny: othersDurables(exp, peers) },
    subscribe: { allow: [INBOX, r(wildcards.experiment(exp), "plain subscriptions to the experiment (pop watch)")], deny: [] },
  };
}

/**
 * The observer (pop watch, report, revote): reads the experiment's streams, state and objects;
 * publishes nothing but the JetStream API requests that reading needs.
 */
export function observerPermissions(exp: string, peers: string[]): RolePermissions {
  const allow: Rule[] = [...jetStreamBasics(), ...experimentReads(exp, peers)];
  // Explicit, so that widening an allow above can never make the observer a writer.
  const deny: Rule[] = [
    r(wildcards.everything, "no protocol message of any kind"),
    r(nats.allKv, "no KV writes"),
    r(nats.allObjects, "no object writes"),
    r(nats.allAcks, "no acks on anyone's consumer"),
    ...(["CREATE", "UPDATE", "DELETE", "PURGE", "MSG.DELETE"] as const).map((op) => r(nats.stream(op, ">"), "no stream changes")),
    ...othersDurables(exp, peers),
    ...coordinatorDurablesDeny(exp),
  ];
  return {
    identity: "observer",
    role: "observer",
    publish: { allow, deny },
    subscribe: { allow: [INBOX, r(wildcards.experiment(exp), "plain subscriptions to the experiment (pop watch)")], deny: [] },
  };
}

/**
 * The same permissions for processes that reach JetStream through a domain (`--js-domain`, a
 * site joined to a hub by a leafnode): nats.js then sends API requests to `$JS.<domain>.API.…`
 * and KV writes to `$JS.<domain>.API.$KV.…`. Each such rule is kept as well: on the server that
 * owns the domain (the hub), the request is mapped back to `$JS.API.…` and nats-server 2.9
 * checks the permissions again on the mapped subject. Acks, flow control, object chunks and
 * the protocol's own subjects keep their names.
 */
export function inDomain(p: RolePermissions, domain: string | undefined): RolePermissions {
  if (!domain) return p;
  const moved = (rule: Rule): Rule[] => {
    const there = nats.inDomain(rule.subject, domain);
    return there === undefined ? [rule] : [rule, { ...rule, subject: there }];
  };
  const lists = (l: { allow: Rule[]; deny: Rule[] }) => ({ allow: l.allow.flatMap(moved), deny: l.deny.flatMap(moved) });
  return { ...p, publish: lists(p.publish), subscribe: lists(p.subscribe) };
}
