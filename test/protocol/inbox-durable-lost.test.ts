/**
 * An inbox whose durable consumer the server has lost (a site cut while the peer created it
 * left "consumer not found" from then on: chaos site-cut seed 105, issue #28). The inbox makes
 * the durable again and carries on: what it had acked is not handed over again, what it had
 * handed back is. It used to pull from the missing durable forever.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consumers, controlEvent, ensureTopology, jetStreamOf, managerOf, publishMessage, startInbox, type Outcome } from "../../protocol/mod.ts";
import { cleanup, connectTo, eventually, startServer } from "../support/nats.ts";

const EXP = "lost";

describe("an inbox whose durable is lost", () => {
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connectTo((await startServer()).url);
    await ensureTopology(nc);
  });
  afterAll(cleanup);

  it("makes it again from the first delivery it had not settled, and handles what comes next", async () => {
    const spec = consumers.peerControl(EXP, "ann");
    const close = (iteration: number) => publishMessage(jetStreamOf(nc), controlEvent(EXP, "iteration_closed", { iteration, pairs: 1, voted: 1 }));
    // Every delivery the handler got, and the ones it acked.
    const seen: number[] = [];
    const acked: number[] = [];
    const warned: { msg: string; obj: Record<string, unknown> }[] = [];
    const log = { info() {}, error() {}, warn: (obj: object, msg?: string) => void warned.push({ msg: msg ?? "", obj: obj as Record<string, unknown> }) };
    const inbox = await startInbox(nc, {
      spec,
      types: ["control"],
      batchSize: 1,
      stallMs: 1_500,
      log,
      handler: async (batch) =>
        batch.map((d): Outcome => {
          const it = "iteration" in d.message ? d.message.iteration : 0;
          seen.push(it);
          // Iteration 2's close is handed back for a minute the first time: the lost durable took its redelivery with it.
          if (it === 2 && d.deliveries === 1 && !seen.slice(0, -1).includes(2)) return { nak: 60_000 };
          acked.push(it);
          return "ack";
        }),
    });
    try {
      await close(1);
      await close(2);
      await eventually(() => seen.includes(1) && seen.includes(2), 15_000, "both closes to be delivered");
      const jsm = await managerOf(nc);
      await jsm.consumers.delete(spec.stream, spec.config.durable_name);
      await close(3);
      await eventually(() => acked.includes(3), 30_000, "the close published after the durable was lost to be handled");
      await eventually(() => acked.includes(2), 15_000, "the handed-back close to be delivered again");
      // Acked before the loss: not handed over again; each close acked once.
      expect(seen.filter((i) => i === 1)).toEqual([1]);
      expect([...acked].sort()).toEqual([1, 2, 3]);
      const remade = warned.filter((w) => /no longer exists/.test(w.msg));
      expect(remade).toHaveLength(1);
      expect(remade[0]!.obj.consumer).toBe(spec.config.durable_name);
      // The durable exists again, reading the same subjects.
      const info = await jsm.consumers.info(spec.stream, spec.config.durable_name);
      expect(info.config.filter_subject).toBe(spec.config.filter_subject);
      // Whatever arrives later is handled as before.
      await close(4);
      await eventually(() => acked.includes(4), 15_000, "a later close to be handled");
      expect(inbox.stats.handled).toBe(4);
    } finally {
      await inbox.stop();
    }
  }, 60_000);

  it("makes a durable lost before anything was delivered again from the stream's start", async () => {
    const spec = consumers.peerControl(EXP, "ben");
    const seen: number[] = [];
    const inbox = await startInbox(nc, {
      spec,
      types: ["control"],
      batchSize: 1,
      stallMs: 1_500,
      handler: async (batch) => void seen.push(...batch.map((d) => ("iteration" in d.message ? d.message.iteration : 0))),
    });
    try {
      // Created at start, gone before its first delivery (as in the site cut).
      const jsm = await managerOf(nc);
      await jsm.consumers.delete(spec.stream, spec.config.durable_name);
      await publishMessage(jetStreamOf(nc), controlEvent(EXP, "iteration_closed", { iteration: 5, pairs: 1, voted: 1 }));
      // The first test's closes (1 to 4) are in the stream already: delivered as to a peer starting afresh.
      await eventually(() => seen.includes(5), 30_000, "the close to be handled");
      expect(seen).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await inbox.stop();
    }
  }, 60_000);
});
