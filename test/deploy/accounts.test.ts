/**
 * Two experiments on one real nats-server, each with its own `pop creds` (both auth.conf files
 * included): each is an account of its own, so no key of experiment A reaches B's durables,
 * streams, state or objects, and A over its account's store limit is refused by the server
 * while B keeps writing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "../../deploy/cli/connect.ts";
import { MIN_MAX_STORE, accountOf, parseBytes } from "../../deploy/ops/account.ts";
import { COORDINATOR_IDENTITY, OBSERVER_IDENTITY, credsAccount, seedFileOf, writeCreds, type CredsResult } from "../../deploy/ops/creds.ts";
import { NatsServer } from "../../deploy/ops/nats-server.ts";
import {
  BUCKETS,
  LimitExceededError,
  Limits,
  STREAMS,
  consumers,
  ensureConsumer,
  ensureTopology,
  natsSubjects,
  openBlobs,
  openManager,
  publishMessage,
  stateKeys,
  subjects,
} from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";

const A = "exp-a";
const B = "exp-b";
const MiB = 1024 ** 2;

describe("one NATS account per experiment (pop creds)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pop-accounts-"));
  let server: NatsServer;
  let credsA: CredsResult;
  let credsB: CredsResult;
  const open: NatsConnection[] = [];
  const as = async (creds: CredsResult, identity: string) => {
    const nc = await connectNats({ servers: server.url, auth: { nkey: seedFileOf(creds.dir, identity) } }, `test-${identity}`);
    open.push(nc);
    return nc;
  };
  const victims = [consumers.coordinatorCandidates(B), consumers.coordinatorVerdicts(B), consumers.peerCandidates(B, "bob")];

  beforeAll(async () => {
    // A is small, so that filling it takes a few dozen publishes.
    credsA = writeCreds({ experiment: A, peers: ["alice"], out: join(dir, "a"), observer: true, maxStore: MIN_MAX_STORE });
    credsB = writeCreds({ experiment: B, peers: ["bob"], out: join(dir, "b"), observer: true });
    server = await NatsServer.start({ dir: join(dir, "nats"), include: [credsA.authConf, credsB.authConf] });
    // B: its topology, durables, a candidate, its config and a pool-like object.
    const coordB = await as(credsB, COORDINATOR_IDENTITY);
    await ensureTopology(coordB);
    const jsmB = await openManager(coordB);
    for (const spec of victims.slice(0, 2)) await ensureConsumer(jsmB, spec);
    await ensureConsumer(await openManager(await as(credsB, "bob")), victims[2]!);
    await publishMessage(jetstream(await as(credsB, "bob")), msg.candidates({ experiment: B, author: "bob" }));
    await jetstream(coordB).publish(natsSubjects.kv(BUCKETS.state, stateKeys.config(B)), JSON.stringify({ secret: "b" }));
    await (await openBlobs(coordB)).putBlob({ name: "b-pool" }, new Uint8Array(2000).fill(7));
    // A: the same topology in its own account, with KV limits that fit its small store.
    await ensureTopology(await as(credsA, COORDINATOR_IDENTITY), { limits: Limits.parse({ stateBytes: 4 * MiB, membersBytes: 4 * MiB }) });
  });
  afterAll(async () => {
    await Promise.all(open.map((nc) => nc.close().catch(() => {})));
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("auth.conf defines the experiment's account; two experiments' files load in one server", () => {
    expect(credsA.account).toBe(accountOf(A));
    expect(credsAccount(credsB.dir)).toBe(accountOf(B));
    expect(credsA.limits.maxStore).toBe(MIN_MAX_STORE);
    expect(parseBytes("50GB")).toBe(50 * 1024 ** 3);
    expect(parseBytes("512 MiB")).toBe(512 * MiB);
  });

  it("no key of A can pull from, delete or take over B's durables", async () => {
    for (const identity of [COORDINATOR_IDENTITY, "alice", OBSERVER_IDENTITY]) {
      const nc = await as(credsA, identity);
      for (const { stream, config } of victims) {
        const name = config.durable_name;
        // A pull returns nothing of B's (the request reaches A's own account, or is refused).
        const pulled = await nc
          .request(natsSubjects.consumer("MSG.NEXT", stream, name), JSON.stringify({ batch: 1, no_wait: true }), { timeout: 1000 })
          .catch(() => undefined);
        expect(pulled?.data.length ?? 0, `${identity} pulled from ${name}`).toBe(0);
        await nc.request(natsSubjects.consumer("DELETE", stream, name), "", { timeout: 1000 }).catch(() => undefined);
        // Created under the same name with a filter its own rules allow: in A's account, if at all.
        const filter = subjects.all(A, "cand");
        const create = natsSubjects.consumer("CREATE", stream, name, filter);
        await nc
          .request(create, JSON.stringify({ stream_name: stream, config: { ...config, filter_subject: filter } }), { timeout: 1000 })
          .catch(() => undefined);
      }
    }
    const jsmB = await openManager(await as(credsB, COORDINATOR_IDENTITY));
    for (const { stream, config } of victims) {
      const info = await jsmB.consumers.info(stream, config.durable_name);
      expect(info.delivered.consumer_seq, config.durable_name).toBe(0);
      expect(info.config.filter_subject).toBe(config.filter_subject);
    }
    expect((await jsmB.consumers.info(STREAMS.candidates.name, consumers.coordinatorCandidates(B).config.durable_name)).num_pending).toBe(1);
  });

  it("no key of A reads B's streams, state or objects", async () => {
    for (const identity of [COORDINATOR_IDENTITY, "alice", OBSERVER_IDENTITY]) {
      const nc = await as(credsA, identity);
      const jsm = await jetstreamManager(nc);
      // B's config by the state bucket's MSG.GET (the key is in the body, so permissions cannot narrow it).
      const config = await jsm.streams
        .getMessage(natsSubjects.kvStream(BUCKETS.state), { last_by_subj: natsSubjects.kv(BUCKETS.state, stateKeys.config(B)) })
        .catch(() => undefined);
      expect(config ?? undefined, `${identity} read B's config`).toBeUndefined();
      // B's pool object, by name, in the pools bucket every experiment's coordinator uses.
      const blob = await (await openBlobs(nc)).getBlob("b-pool").catch(() => null);
      expect(blob, `${identity} read B's object`).toBeNull();
      // B's streams do not even show: A's account has its own.
      expect((await jsm.streams.info(STREAMS.candidates.name)).state.messages).toBe(0);
    }
  });

  it("A over its account's store limit is refused by the server with a named error; B keeps writing", async () => {
    const js = jetstream(await as(credsA, "alice"));
    // Fifteen answers of 60 KB (a text's most): ~0.9 MB a batch, so 64 MiB take about 75.
    const texts = Array.from({ length: 15 }, (_, i) => `${i}`.padEnd(60_000, "x"));
    let refused: unknown;
    for (let i = 1; i <= 200 && !refused; i++) {
      refused = await publishMessage(js, msg.candidates({ experiment: A, author: "alice", iteration: i, texts })).then(
        () => undefined,
        (e: unknown) => e,
      );
    }
    expect(refused).toBeInstanceOf(LimitExceededError);
    expect((refused as LimitExceededError).serverSays).toMatch(/resource limits exceeded for account/);
    const stored = (await (await jetstreamManager(await as(credsA, COORDINATOR_IDENTITY))).getAccountInfo()).storage;
    expect(stored).toBeLessThanOrEqual(MIN_MAX_STORE);
    // B is unaffected.
    const ack = await publishMessage(jetstream(await as(credsB, "bob")), msg.candidates({ experiment: B, author: "bob", iteration: 2, texts }));
    expect(ack.duplicate).toBe(false);
  });
});
