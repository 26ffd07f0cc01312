/**
 * A durable consumer whose leader reads a replica that lags (seen on nats-server 2.9.10 after a
 * cut healed): its own num_pending says 0 while the stream leader holds more. The lagging
 * replica is a durable that holds none of the reader's messages, as that replica's did; the
 * check must see through it and move the durable's leader to another replica of a real cluster.
 */
import { AckPolicy, jetstream } from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { managerOf, type ConsumerSpec } from "../../protocol/mod.ts";
import { DurableLag } from "../../protocol/reader/durable-lag.ts";
import { cleanup, connectTo, eventually, startCluster } from "../support/nats.ts";

describe("a durable on a replica that lags", () => {
  afterAll(cleanup);

  it("is found by asking the stream leader, and its leader is moved", async () => {
    const cluster = await startCluster(3);
    const nc = await connectTo(cluster.urls, "durable-lag");
    const jsm = await eventually(async () => (await managerOf(nc)).getAccountInfo().then(() => managerOf(nc)), 30_000, "JetStream meta leader");
    await eventually(() => jsm.streams.add({ name: "DL", subjects: ["dl.>"], num_replicas: 3 }), 30_000, "an R3 stream");
    // What the reader reads (dl.*.x) is missing from this durable's view, as from a stale replica.
    await jsm.consumers.add("DL", { durable_name: "blind", filter_subject: "dl.stale-replica-has-none", ack_policy: AckPolicy.Explicit });
    const js = jetstream(nc);
    const warned: string[] = [];
    const log = { info() {}, error() {}, warn: (_o: object, msg?: string) => void warned.push(msg ?? "") };
    const spec: ConsumerSpec = { stream: "DL", config: { durable_name: "blind", filter_subject: "dl.*.x" } };
    const consumer = await js.consumers.get("DL", "blind");

    expect(await new DurableLag(nc, spec, consumer, log, 0).waiting()).toBe(0);
    await js.publish("dl.a.x", "1");
    // Just stored: a current replica may not have applied it yet, so not yet counted as lag.
    expect(await new DurableLag(nc, spec, consumer, log).waiting()).toBe(0);
    const lag = new DurableLag(nc, spec, consumer, log, 0);
    expect(await lag.waiting()).toBe(1);

    const before = (await consumer.info(false)).cluster!.leader!;
    await lag.move();
    expect(warned.some((w) => /lags the stream leader/.test(w))).toBe(true);
    expect(warned.some((w) => /could not move/.test(w))).toBe(false);
    const after = await eventually(
      async () => {
        const leader = (await consumer.info(false)).cluster?.leader;
        return leader && leader !== before ? leader : undefined;
      },
      15_000,
      "another consumer leader",
    );
    expect(after).not.toBe(before);
    // A current durable's own count is believed.
    await jsm.consumers.add("DL", { durable_name: "current", filter_subject: "dl.*.x", ack_policy: AckPolicy.Explicit });
    const current = new DurableLag(
      nc,
      { stream: "DL", config: { durable_name: "current", filter_subject: "dl.*.x" } },
      await js.consumers.get("DL", "current"),
      log,
      0,
    );
    expect(await current.waiting()).toBe(1);
  });
});
