import { jetstream } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  consumers,
  decode,
  encode,
  ensureTopology,
  openManager,
  publishMessage,
  startInbox,
  STREAMS,
  subjects,
  UnsupportedServerError,
  headersFor,
  PopError,
  readStored,
  type Delivery,
  type MessageOf,
} from "../../protocol/mod.ts";
import { cleanup, connectTo, eventually, startServer } from "../support/nats.ts";
import { sampleMessages } from "../support/messages.ts";
import type { NatsConnection } from "@nats-io/transport-node";

describe("JetStream topology and inboxes on a real nats-server", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    const server = await startServer();
    nc = await connectTo(server.url);
  });
  afterAll(cleanup);

  it("ensuring the topology twice changes nothing", async () => {
    const first = await ensureTopology(nc);
    expect(Object.values(first.streams).every((o) => o === "created")).toBe(true);
    expect(Object.values(first.buckets).every((o) => o === "created")).toBe(true);
    const jsm = await openManager(nc);
    const before = await Promise.all(Object.values(STREAMS).map((s) => jsm.streams.info(s.name)));
    const second = await ensureTopology(nc);
    expect(Object.values(second.streams).every((o) => o === "unchanged")).toBe(true);
    expect(Object.values(second.buckets).every((o) => o === "unchanged")).toBe(true);
    const after = await Promise.all(Object.values(STREAMS).map((s) => jsm.streams.info(s.name)));
    expect(after.map((i) => i.config)).toEqual(before.map((i) => i.config));
    expect(after.map((i) => i.created)).toEqual(before.map((i) => i.created));
  });

  it("refuses options the server cannot honour", async () => {
    const [maj, min] = nc.info!.version.split(".").map(Number);
    if (maj === 2 && min! < 10) {
      await expect(ensureTopology(nc, { compression: true })).rejects.toThrow(UnsupportedServerError);
      await expect(ensureTopology(nc, { compression: true })).rejects.toThrow(/streamCompression needs nats-server >= 2.10/);
    } else {
      await expect(ensureTopology(nc, { compression: true })).resolves.toBeTruthy();
    }
  });

  it("stores a republished message with the same msgID once", async () => {
    const js = jetstream(nc);
    const prompt = sampleMessages().find((m) => m.type === "prompt")!;
    const a = await publishMessage(js, prompt);
    const b = await publishMessage(js, prompt);
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    expect(b.seq).toBe(a.seq);
    const info = await (await openManager(nc)).streams.info(STREAMS.prompts.name);
    expect(info.state.messages).toBe(1);
  });

  it("dead-letters malformed and forged messages with their reasons, and keeps consuming", async () => {
    const js = jetstream(nc);
    const exp = "dl1";
    const seen: string[] = [];
    const inbox = await startInbox(nc, {
      spec: consumers.peerCandidates(exp, "judge1"),
      types: ["candidates"],
      handler: async (batch: Delivery<MessageOf<"candidates">>[]) => {
        for (const d of batch) seen.push(d.message.author);
      },
    });
    const cand = { ...sampleMessages().find((m) => m.type === "candidates")!, experiment: exp } as MessageOf<"candidates">;
    // 1. garbage bytes on a candidate subject
    await js.publish(subjects.candidates(exp, 1, "alice"), new TextEncoder().encode("definitely not msgpack"), { msgID: "junk-1" });
    // 2. a valid message published under somebody else's name
    await js.publish(subjects.candidates(exp, 1, "mallory"), encode(cand), { msgID: "forged-1", headers: headersFor(cand) });
    // 3. a good one, after both
    await publishMessage(js, cand);
    await eventually(() => seen.length === 1 && inbox.stats.dead === 2, 15_000, "one good message handled and two dead-lettered");
    expect(seen).toEqual(["alice"]);

    const { messages: letters } = await readStored(nc, STREAMS.dead.name, `pop.${exp}.dead.>`, "dead_letter");
    expect(letters).toHaveLength(2);
    const byReason = Object.fromEntries(letters.map((l) => [l.reason, l]));
    expect(byReason.malformed!.subject).toBe(`pop.${exp}.cand.1.alice`);
    expect(new TextDecoder().decode(byReason.malformed!.payload)).toBe("definitely not msgpack");
    expect(byReason.identity_mismatch!.detail).toMatch(/published as 'mallory'.*'alice'/);
    expect(decode(byReason.identity_mismatch!.payload)).toEqual(cand);

    // The bad ones are terminated, not pending redelivery.
    const jsm = await openManager(nc);
    const info = await eventually(
      async () => {
        const i = await jsm.consumers.info(STREAMS.candidates.name, `${exp}-judge1-cands`);
        return i.num_ack_pending === 0 && i.num_pending === 0 ? i : undefined;
      },
      10_000,
      "nothing left pending",
    );
    expect(info.num_redelivered).toBe(0);
    await inbox.stop();
  });

  it("acks unread what its skip option names by subject: neither decoded, validated nor handed to the handler", async () => {
    const js = jetstream(nc);
    const exp = "skip1";
    const seen: string[] = [];
    const inbox = await startInbox(nc, {
      spec: consumers.peerCandidates(exp, "judge1"),
      types: ["candidates"],
      skip: (subject) => subject.endsWith(".judge1"),
      handler: async (batch: Delivery<MessageOf<"candidates">>[]) => {
        for (const d of batch) seen.push(d.message.author);
      },
    });
    const cand = { ...sampleMessages().find((m) => m.type === "candidates")!, experiment: exp } as MessageOf<"candidates">;
    // The judge's own batch, and bytes on its subject that would be dead-lettered if they were read.
    await publishMessage(js, { ...cand, author: "judge1", candidates: cand.candidates.map((c, i) => ({ ...c, candidateId: `${cand.promptId}:judge1:${i}` })) });
    await js.publish(subjects.candidates(exp, 1, "judge1"), new TextEncoder().encode("not msgpack"), { msgID: "junk-skip" });
    await publishMessage(js, cand);
    await eventually(() => inbox.stats.handled === 3, 15_000, "all three acked");
    expect(seen).toEqual([cand.author]);
    expect(inbox.stats.dead).toBe(0);
    const jsm = await openManager(nc);
    await eventually(
      async () => {
        const i = await jsm.consumers.info(STREAMS.candidates.name, `${exp}-judge1-cands`);
        return i.num_ack_pending === 0 && i.num_pending === 0;
      },
      10_000,
      "nothing left pending",
    );
    await inbox.stop();
  });

  it("tells gaveUp about valid work that went to the dead letters, whether decided at once, later or on the last retry", async () => {
    const js = jetstream(nc);
    const exp = "gu1";
    const gaveUp: string[] = [];
    const inbox = await startInbox(nc, {
      spec: consumers.peerPrompts(exp, "p1"),
      types: ["prompt"],
      handler: async (batch) =>
        batch.map((d) =>
          d.message.promptId === "now"
            ? { dead: "the model gave no answers" }
            : d.message.promptId === "later"
              ? { later: Promise.resolve({ dead: "no answers either" }) }
              : d.message.promptId === "fatal"
                ? { later: Promise.reject(new PopError("model refuses this prompt", { retryable: false })) }
                : "ack",
        ),
      gaveUp: async (m, reason, detail) => {
        gaveUp.push(`${m.promptId}:${reason}:${detail}`);
      },
    });
    const prompt = { ...sampleMessages().find((m) => m.type === "prompt")!, experiment: exp } as MessageOf<"prompt">;
    for (const id of ["fine", "now", "later", "fatal"]) await publishMessage(js, { ...prompt, promptId: id });
    // Refused at admission: not work anybody owed, so gaveUp hears nothing of it.
    await js.publish(subjects.prompt(exp, 1), new TextEncoder().encode("junk"), { msgID: "gu-junk" });
    await eventually(() => inbox.stats.dead === 4, 15_000, "three given up and one refused");
    expect(gaveUp.sort()).toEqual([
      "fatal:handler_failed:model refuses this prompt",
      "later:handler_failed:no answers either",
      "now:handler_failed:the model gave no answers",
    ]);
    await inbox.stop();
  });

  it("redelivers a batch whose handler failed, and hands back in-flight work on stop", async () => {
    const js = jetstream(nc);
    const exp = "rd1";
    let calls = 0;
    const got: number[] = [];
    const inbox = await startInbox(nc, {
      spec: consumers.peerPrompts(exp, "p1"),
      types: ["prompt"],
      handler: async (batch) => {
        calls++;
        if (calls === 1) throw new Error("transient");
        for (const d of batch) got.push(d.deliveries);
      },
    });
    const prompt = { ...sampleMessages().find((m) => m.type === "prompt")!, experiment: exp } as MessageOf<"prompt">;
    await publishMessage(js, prompt);
    await eventually(() => got.length === 1, 15_000, "redelivery");
    expect(got).toEqual([2]);
    await inbox.stop();

    // A handler still working when the inbox stops: its message goes back, and the next
    // process sharing the durable gets it.
    let started = false;
    const slow = await startInbox(nc, {
      spec: consumers.peerPrompts(exp, "p1"),
      types: ["prompt"],
      handler: (_batch, signal) =>
        new Promise((_resolve, reject) => {
          started = true;
          signal.addEventListener("abort", () => reject(new Error("aborted")));
        }),
    });
    await publishMessage(js, { ...prompt, promptId: "p-2" });
    await eventually(() => started, 10_000, "slow handler to start");
    await slow.stop();
    expect(await nextProcessGets(exp, "in-flight prompt redelivered to the next process")).toEqual(["p-2"]);
  });

  it("holds a delivery whose outcome comes later while it handles others, and hands held ones back on stop", async () => {
    const js = jetstream(nc);
    const exp = "hold1";
    const prompt = { ...sampleMessages().find((m) => m.type === "prompt")!, experiment: exp } as MessageOf<"prompt">;
    let release!: () => void;
    const seen: string[] = [];
    const inbox = await startInbox(nc, {
      spec: consumers.peerPrompts(exp, "p1"),
      types: ["prompt"],
      batchSize: 1,
      handler: async (batch) =>
        batch.map((d) => {
          seen.push(d.message.promptId);
          // the first waits for a later decision; the rest are acked at once
          return d.message.promptId === "h-1" ? { later: new Promise<"ack">((r) => (release = () => r("ack"))) } : "ack";
        }),
    });
    await publishMessage(js, { ...prompt, promptId: "h-1" });
    await publishMessage(js, { ...prompt, promptId: "h-2" });
    await eventually(() => seen.length === 2, 10_000, "both handled, the first held");
    expect(inbox.idleMs()).toBe(0); // it holds work
    release();
    await eventually(() => inbox.stats.handled === 2, 10_000, "the held one acked once decided");
    await inbox.stop();

    // Held when the inbox stops: handed back, and the next process gets it.
    let holds = 0;
    const holding = await startInbox(nc, {
      spec: consumers.peerPrompts(exp, "p1"),
      types: ["prompt"],
      handler: async (batch) => batch.map(() => (holds++, { later: new Promise<"ack">(() => undefined) })),
    });
    await publishMessage(js, { ...prompt, promptId: "h-3" });
    await eventually(() => holds === 1, 10_000, "h-3 held");
    expect(holding.idleMs()).toBe(0);
    await holding.stop();
    expect(await nextProcessGets(exp, "the held prompt redelivered to the next process")).toEqual(["h-3"]);
  });

  /** The prompt a process sharing the durable receives next (what a stopped inbox handed back). */
  async function nextProcessGets(exp: string, what: string): Promise<string[]> {
    const again: string[] = [];
    const next = await startInbox(nc, {
      spec: consumers.peerPrompts(exp, "p1"),
      types: ["prompt"],
      handler: async (batch) => {
        for (const d of batch) again.push(d.message.promptId);
      },
    });
    await eventually(() => again.length === 1, 15_000, what);
    await next.stop();
    return again;
  }
});
