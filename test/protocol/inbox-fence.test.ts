/**
 * A fenced inbox whose lease read fails (as right after a cut site reconnects, while its node's
 * JetStream is not yet back): the delivery is handed back and handled later, and the inbox
 * carries on. It used to end the inbox's worker while its pull went on: a peer never trained on
 * an iteration closed during a site-cut (issue #28).
 */
import type { KV } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BUCKETS,
  FenceView,
  consumers,
  controlEvent,
  countProtocolMessages,
  encode,
  ensureTopology,
  jetStreamOf,
  onProtocolEvent,
  publishMessage,
  stateKeys,
  startInbox,
  type MessageOf,
} from "../../protocol/mod.ts";
import { leaseRecord } from "../support/messages.ts";
import { cleanup, connectTo, eventually, startServer } from "../support/nats.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { Registry } from "prom-client";

const EXP = "fenced";

/** A KV whose reads fail while `failing` is above 0 (each failed read counts it down). */
function flaky(kv: KV): { kv: KV; fail(n: number): void } {
  let failing = 0;
  const wrapped = new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop === "get")
        return async (key: string) => {
          if (failing > 0) {
            failing--;
            throw new Error("JetStream system temporarily unavailable");
          }
          return target.get(key);
        };
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { kv: wrapped, fail: (n) => void (failing = n) };
}

describe("a fenced inbox", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connectTo((await startServer()).url);
    await ensureTopology(nc);
  });
  afterAll(cleanup);

  it("hands back a delivery whose lease read fails, and handles it once the lease can be read", async () => {
    const kv = await new Kvm(nc).open(BUCKETS.state);
    const lease = (token: number) =>
      leaseRecord({
        experiment: EXP,
        instance: `coord-${token}`,
        token,
        fences: Array.from({ length: token }, (_, i) => ({ token: i + 1, instance: `coord-${i + 1}`, since: i, after: {} })),
      });
    await kv.put(stateKeys.lease(EXP), encode(lease(1)));
    const store = flaky(kv);
    // Read once, not watched: the takeover below is learnt from the delivery's newer token.
    const fence = await FenceView.read(store.kv, EXP);
    const seen: MessageOf<"control">[] = [];
    const admitted: { event: string; redelivered: boolean }[] = [];
    const stopHearing = onProtocolEvent((e) => {
      if (e.kind === "admitted" && e.message.type === "control") admitted.push({ event: e.message.event, redelivered: e.redelivered });
    });
    const registry = new Registry();
    countProtocolMessages(registry);
    const inbox = await startInbox(nc, {
      spec: consumers.peerControl(EXP, "ann"),
      types: ["control"],
      fence,
      batchSize: 1,
      handler: async (batch) => void seen.push(...batch.map((d) => d.message)),
    });
    try {
      // The standby took over (token 2) and closed the iteration; the reader's lease read fails twice.
      await kv.put(stateKeys.lease(EXP), encode(lease(2)));
      store.fail(2);
      await publishMessage(jetStreamOf(nc), controlEvent(EXP, "iteration_closed", { iteration: 1, pairs: 4, voted: 4 }), { fence: 2 });
      await eventually(() => seen.some((e) => e.event === "iteration_closed"), 15_000, "the close to be handled");
      expect(fence.current?.token).toBe(2);
      // And the inbox goes on reading.
      await publishMessage(jetStreamOf(nc), controlEvent(EXP, "experiment_done", { iterations: 1 }), { fence: 2 });
      await eventually(() => seen.some((e) => e.event === "experiment_done"), 15_000, "the next event to be handled");
      expect(seen.map((e) => e.event)).toEqual(["iteration_closed", "experiment_done"]);
      // The handed-back close was admitted on its third delivery: counted as redelivered, not as a second message in.
      expect(admitted).toEqual([
        { event: "iteration_closed", redelivered: true },
        { event: "experiment_done", redelivered: false },
      ]);
      const counted = await registry.getSingleMetricAsString("pop_messages_total");
      expect(counted).toMatch(/^pop_messages_total\{direction="redelivered",type="control"\} 1$/m);
      expect(counted).toMatch(/^pop_messages_total\{direction="in",type="control"\} 1$/m);
    } finally {
      stopHearing();
      await inbox.stop();
    }
  }, 40_000);
});
