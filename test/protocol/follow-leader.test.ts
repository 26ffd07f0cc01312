/**
 * A follower whose consumer reads a replica that lags the stream leader for good (seen on
 * nats-server 2.9.10 after a cut healed: that replica never resynced, and the consumer's own
 * num_pending, answered from it, said 0). The lagging replica is a consumer that holds nothing of
 * the reader's messages and says nothing is pending, as that replica's did; the follower must get
 * every message from the leader anyway, in order, once each.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { followStream, publishMessage, readStored, subjects, type Follower, type MessageOf } from "../../protocol/mod.ts";
import { orderedConsumer } from "../../protocol/reader/ordered.ts";
import { sampleMessages } from "../support/messages.ts";
import { cleanup, connectTo, eventually, startServer } from "../support/nats.ts";

const STALL_MS = 600;

describe("a follower on a replica that lags", () => {
  afterAll(cleanup);

  it("reads what its consumer missed from the stream leader, then what comes after, each once in order", async () => {
    const server = await startServer();
    const nc = await connectTo(server.url, "follow-leader");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "LAG", subjects: ["lag.>"] });
    const js = jetstream(nc);
    for (let i = 1; i <= 4; i++) await js.publish(i % 2 ? "lag.a.x" : "lag.b.x", `m${i}`);
    await js.publish("lag.other", "not the reader's");

    const seen: number[] = [];
    const warned: string[] = [];
    let opened = 0;
    const follower: Follower = await followStream({
      nc,
      stream: "LAG",
      filter: "lag.*.x",
      stallMs: STALL_MS,
      log: { info() {}, error() {}, warn: (_o, msg) => void warned.push(msg ?? "") },
      // Every consumer lands on the stale replica: it delivers none of the reader's messages.
      consumerAfter: (afterSeq) => (opened++, orderedConsumer(js, "LAG", "lag.stale-replica-has-none", afterSeq)),
      each: (m) => void seen.push(m.info.streamSequence),
    });
    try {
      await eventually(() => seen.length >= 4, 10_000, "the messages the consumer missed");
      expect(seen).toEqual([1, 2, 3, 4]);
      expect(warned.some((w) => /read them from the leader/.test(w))).toBe(true);
      for (let i = 0; i < 2; i++) await js.publish("lag.a.x", `late${i}`);
      await eventually(() => seen.length >= 6, 10_000, "the messages stored later");
      expect(seen).toEqual([1, 2, 3, 4, 6, 7]);
      // After catching up it tries a new consumer each time (one may land on a replica that is current).
      expect(opened).toBeGreaterThan(1);
    } finally {
      await follower.close();
    }
  });

  it("asks the leader when quiet but hands a current consumer's messages over once each", async () => {
    const server = await startServer();
    const nc = await connectTo(server.url, "follow-current");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "CUR", subjects: ["cur.>"] });
    const js = jetstream(nc);
    for (let i = 0; i < 3; i++) await js.publish("cur.x", `m${i}`);
    const seen: number[] = [];
    const warned: string[] = [];
    const follower = await followStream({
      nc,
      stream: "CUR",
      filter: "cur.x",
      stallMs: STALL_MS,
      log: { info() {}, error() {}, warn: (_o, msg) => void warned.push(msg ?? "") },
      each: (m) => void seen.push(m.info.streamSequence),
    });
    try {
      await eventually(() => seen.length >= 3, 10_000, "the stored messages");
      // Quiet for several stall times: the leader is asked and has nothing more.
      await new Promise((r) => setTimeout(r, STALL_MS * 4));
      for (let i = 0; i < 2; i++) await js.publish("cur.x", `late${i}`);
      await eventually(() => seen.length >= 5, 10_000, "the later messages");
      await new Promise((r) => setTimeout(r, STALL_MS * 2));
      expect(seen).toEqual([1, 2, 3, 4, 5]);
      expect(warned).toEqual([]);
    } finally {
      await follower.close();
    }
  });

  it("reads back to the leader's end, not the lagging replica's", async () => {
    const server = await startServer();
    const nc = await connectTo(server.url, "read-back-leader");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "RB", subjects: ["pop.>"] });
    const js = jetstream(nc);
    const base = sampleMessages().find((m) => m.type === "prompt") as MessageOf<"prompt">;
    for (let i = 0; i < 3; i++) await publishMessage(js, { ...base, experiment: "rb", promptId: `rb${i}` });
    const filter = subjects.all("rb", "prompt");
    const lagging = () => orderedConsumer(js, "RB", "pop.stale-replica-has-none");
    const { messages } = await readStored(nc, "RB", filter, "prompt", { consumer: lagging });
    expect(messages.map((m) => m.promptId)).toEqual(["rb0", "rb1", "rb2"]);
    // A current consumer's read is the same.
    expect((await readStored(nc, "RB", filter, "prompt")).messages.map((m) => m.promptId)).toEqual(["rb0", "rb1", "rb2"]);
  });
});
