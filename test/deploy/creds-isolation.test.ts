/**
 * What lies beside the protocol subjects, with `pop creds` keys on a real nats-server: each
 * identity reads only its own inbox, cannot touch the coordinator's or another peer's durable
 * consumers, and bytes relayed through a consumer's deliver subject or a request's reply subject
 * are never admitted as the victim's.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COORDINATOR_IDENTITY, OBSERVER_IDENTITY, seedFileOf } from "../../deploy/ops/creds.ts";
import { natsConnectionOptions } from "../../deploy/ops/nats-options.ts";
import {
  STREAMS,
  admit,
  consumers,
  encode,
  ensureConsumer,
  ensureTopology,
  natsSubjects,
  openManager,
  publishMessage,
  readStored,
  subjects,
  wildcards,
} from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";
import { CredentialedServer } from "../support/networks.ts";

const EXP = "iso";
const PEERS = ["alice", "bob"];

/** The server refuses `subject` to this key: the request fails with its permissions violation. */
async function expectRefused(nc: NatsConnection, subject: string, body: unknown = {}) {
  const error = await nc.request(subject, JSON.stringify(body), { timeout: 3000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect((error as Error | undefined)?.message, `${subject} should be refused`).toMatch(/Permissions Violation for Publish/);
}

/** Subscribing to `subject` is refused by the server. */
async function expectSubscriptionRefused(nc: NatsConnection, subject: string) {
  const sub = nc.subscribe(subject);
  await expect(
    (async () => {
      for await (const _ of sub) break;
    })(),
  ).rejects.toThrow(/Permissions Violation for Subscription/);
}

describe("identity beside the subjects: inboxes, consumers, relays (pop creds)", () => {
  let network: CredentialedServer;
  const keyOf = (identity: string) => network.creds.identities.find((i) => i.name === identity)!.publicKey;

  beforeAll(async () => {
    network = await CredentialedServer.start({ experiment: EXP, peers: PEERS });
    const coordinator = await network.as(COORDINATOR_IDENTITY);
    await ensureTopology(coordinator);
    const jsm = await openManager(coordinator);
    for (const spec of [consumers.coordinatorCandidates(EXP), consumers.coordinatorVerdicts(EXP), consumers.coordinatorControl(EXP)])
      await ensureConsumer(jsm, spec);
    await ensureConsumer(await openManager(await network.as("bob")), consumers.peerCandidates(EXP, "bob"));
  });
  afterAll(() => network.dispose());

  it("each key replies on its own inbox and cannot subscribe to anyone else's or to _INBOX.>", async () => {
    const alice = await network.as("alice");
    const options = natsConnectionOptions({ servers: network.server.url, auth: { nkey: seedFileOf(network.creds.dir, "alice") } }, "t");
    expect(options.inboxPrefix).toBe(natsSubjects.privateInbox(keyOf("alice")));
    // Everything that replies still works through the private inbox: requests, publish acks,
    // ordered consumers (readStored), durable pulls.
    await publishMessage(jetstream(alice), msg.candidates({ experiment: EXP, author: "alice" }));
    expect((await readStored(alice, STREAMS.candidates.name, wildcards.anyIteration(EXP, "cand"), "candidates")).messages).toHaveLength(1);
    for (const identity of ["alice", OBSERVER_IDENTITY]) {
      const nc = identity === "alice" ? alice : await network.as(identity);
      await expectSubscriptionRefused(nc, natsSubjects.inboxes);
      await expectSubscriptionRefused(nc, `${natsSubjects.privateInbox(keyOf("bob"))}.>`);
      await expectSubscriptionRefused(nc, `${natsSubjects.privateInbox(keyOf(COORDINATOR_IDENTITY))}.>`);
    }
  });

  it("a peer's or the observer's key cannot pull from, ack, re-create or delete the coordinator's or another peer's durables", async () => {
    const victims = [
      consumers.coordinatorVerdicts(EXP),
      consumers.coordinatorCandidates(EXP),
      consumers.coordinatorControl(EXP),
      consumers.peerCandidates(EXP, "bob"),
    ];
    for (const identity of ["alice", OBSERVER_IDENTITY]) {
      const nc = await network.as(identity);
      for (const { stream, config } of victims) {
        const name = config.durable_name;
        await expectRefused(nc, natsSubjects.consumer("MSG.NEXT", stream, name), { batch: 1, no_wait: true });
        await expectRefused(nc, natsSubjects.consumer("DELETE", stream, name));
        await expectRefused(nc, `$JS.ACK.${stream}.${name}.1.1.1.1.0`);
        // Re-created over it with a filter the ordered-read rules allow.
        await expectRefused(nc, natsSubjects.consumer("CREATE", stream, name, subjects.all(EXP, "cand")), {
          stream_name: stream,
          config: { ...config, filter_subject: subjects.all(EXP, "cand") },
        });
      }
    }
    // Still there, untouched.
    const jsm = await openManager(await network.as(COORDINATOR_IDENTITY));
    for (const { stream, config } of victims) expect((await jsm.consumers.info(stream, config.durable_name)).delivered.consumer_seq).toBe(0);
  });

  it("bytes relayed through a deliver subject or a reply subject are never admitted as the victim's", async () => {
    const alice = await network.as("alice");
    // A verdict that claims to be bob's, stored on alice's own candidates subject.
    const forged = encode(msg.verdict({ experiment: EXP, iteration: 7, judge: "bob", scored: { alice: [5] } }));
    await jetstream(alice).publish(subjects.candidates(EXP, 7, "alice"), forged);
    const jsm = await jetstreamManager(alice);
    const filter = subjects.candidates(EXP, 7, "alice");
    // The server checks neither against alice's publish rights (2.9.10 and 2.10.27 alike).
    await jsm.consumers.add(STREAMS.candidates.name, {
      name: "relay_push",
      filter_subject: filter,
      deliver_subject: subjects.verdict(EXP, 7, "bob"),
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    await jsm.consumers.add(STREAMS.candidates.name, {
      name: "relay_pull",
      filter_subject: filter,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    alice.publish(natsSubjects.consumer("MSG.NEXT", STREAMS.candidates.name, "relay_pull"), JSON.stringify({ batch: 1 }), {
      reply: subjects.verdict(EXP, 8, "bob"),
    });
    alice.publish(natsSubjects.info, "", { reply: subjects.verdict(EXP, 9, "bob") });
    alice.publish(filter, forged, { reply: subjects.verdict(EXP, 10, "bob") });
    await alice.flush();
    await new Promise((r) => setTimeout(r, 1000));
    // What bob's readers see on his verdict subjects: nothing admitted.
    const coordinator = await network.as(COORDINATOR_IDENTITY);
    const js = jetstream(coordinator);
    const c = await js.consumers.get(STREAMS.verdicts.name, { filter_subjects: `pop.${EXP}.verdict.*.bob` });
    const seen: { subject: string; ok: boolean }[] = [];
    for await (const m of await c.fetch({ max_messages: 20, expires: 1500 })) {
      seen.push({ subject: m.subject, ok: admit(m.subject, m.data, ["verdict"]).ok });
      if (m.info.pending === 0) break;
    }
    expect(seen.length, "the replies relayed onto bob's subjects").toBeGreaterThan(0);
    expect(seen.filter((s) => s.ok)).toEqual([]);
    // The forged verdict itself is stored under its original subject, outside every verdict filter.
    expect(seen.map((s) => s.subject).every((s) => s.startsWith(`pop.${EXP}.verdict.`))).toBe(true);
  });
});
