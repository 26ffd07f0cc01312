/**
 * The coordinator's lease against a real KV: acquire, renew, lapse judged by the standby's own
 * clock, takeover with a higher token and a boundary, and a paused leader that finds itself
 * fenced; then the readers' side: a stale leader's pair and control event are refused.
 */
import { Kvm } from "@nats-io/kv";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { CoordinatorLease, LeaseLostError } from "../../coordinator/lease.ts";
import {
  BUCKETS,
  FenceView,
  STREAMS,
  controlEvent,
  ensureTopology,
  jetStreamOf,
  publishMessage,
  readRecord,
  readStored,
  stateKeys,
  subjects,
} from "../../protocol/mod.ts";
import { pair } from "../support/messages.ts";
import { SingleServer } from "../support/networks.ts";

const EXP = "lease";
const LEASE_MS = 600;
const log = pino({ level: "silent" });

describe("the coordinator lease", () => {
  it("is held by one, renewed, taken over after a lapse by the standby's clock, and fences the paused leader", async () => {
    await using network = await SingleServer.start();
    const nc = await network.admin("lease");
    await ensureTopology(nc);
    const kv = await new Kvm(nc).open(BUCKETS.state);
    const js = jetStreamOf(nc);
    const boundary = async () => ({ [STREAMS.pairs.name]: (await (await js.jetstreamManager()).streams.info(STREAMS.pairs.name)).state.last_seq });
    const options = (instance: string) => ({ kv, experiment: EXP, instance, leaseMs: LEASE_MS, log, boundary });

    // a acquires (create): token 1.
    const a = (await CoordinatorLease.acquire(options("a")))!;
    expect(a.fence()).toBe(1);
    a.start();
    // a stale-to-be pair, published while a leads: history, admitted by everyone.
    await publishMessage(js, pair({ experiment: EXP, iteration: 1, pairId: "p-early" }), { fence: a.fence() });

    // b stands by while a renews: after 3 lease lengths it still has not taken over.
    const standby = new AbortController();
    let tookOverAt = 0;
    const bWaiting = CoordinatorLease.acquire(options("b"), standby.signal).then((l) => ((tookOverAt = performance.now()), l));
    await new Promise((r) => setTimeout(r, 3 * LEASE_MS));
    expect(tookOverAt).toBe(0);
    expect((await readRecord(kv, stateKeys.lease(EXP), "lease"))?.instance).toBe("a");

    // a is paused: its renew timer stops (as under SIGSTOP). b takes over within about a lease
    // length of the last renewal, with a higher token.
    const pausedAt = performance.now();
    await a.stop(false);
    const b = (await bWaiting)!;
    // Never two acting leaders: by the time b holds the lease, a may no longer act by its own clock.
    expect(() => a.fence()).toThrow(LeaseLostError);
    const takeover = tookOverAt - pausedAt;
    console.log(`takeover ${Math.round(takeover)} ms after the leader was paused (lease ${LEASE_MS} ms)`);
    expect(takeover).toBeGreaterThanOrEqual(LEASE_MS / 2);
    expect(takeover).toBeLessThan(LEASE_MS * 3);
    expect(b.fence()).toBe(2);
    b.start();
    const lease = (await readRecord(kv, stateKeys.lease(EXP), "lease"))!;
    expect(lease).toMatchObject({ instance: "b", token: 2 });
    expect(lease.fences.map((f) => f.token)).toEqual([1, 2]);

    // a wakes: it has not renewed for longer than it may act, so it publishes nothing.
    expect(a.lost.aborted).toBe(true);
    // Its renewal finds the revision changed: still lost, and the lease stays b's.
    await a.renew();
    expect((await readRecord(kv, stateKeys.lease(EXP), "lease"))?.instance).toBe("b");

    // A stale publication through the coordinator's key (as if a's publish had been in flight)
    // and b's own: readers admit b's and the early one, and refuse the stale one.
    await publishMessage(js, pair({ experiment: EXP, iteration: 1, pairId: "p-stale" }), { fence: 1 });
    await publishMessage(js, pair({ experiment: EXP, iteration: 1, pairId: "p-new" }), { fence: b.fence() });
    await publishMessage(js, pair({ experiment: EXP, iteration: 1, pairId: "p-untokened" }));
    const view = await FenceView.read(kv, EXP);
    const read = await readStored(nc, STREAMS.pairs.name, subjects.pair(EXP, 1), "pair", { fence: view });
    expect(read.messages.map((p) => p.pairId)).toEqual(["p-early", "p-new"]);
    expect(read.skipped.map((s) => s.reason.split(":")[0])).toEqual(["stale_leader", "stale_leader"]);
    // Without the fence (an older reader), all four are there: the refusal is the fence's.
    expect((await readStored(nc, STREAMS.pairs.name, subjects.pair(EXP, 1), "pair")).messages).toHaveLength(4);

    // A control event of a's through a live view: refused too.
    await publishMessage(js, controlEvent(EXP, "iteration_closed", { iteration: 1, pairs: 9, voted: 9 }), { fence: 1 });
    const control = await readStored(nc, STREAMS.control.name, subjects.all(EXP, "ctl"), "control", { fence: view });
    expect(control.messages).toHaveLength(0);
    expect(control.skipped[0]?.reason).toMatch(/^stale_leader: fencing token 1 is stale: token 2 \(b\)/);

    // A clean stop releases the lease: a third process takes over at once, token 3.
    await b.stop(true);
    const t0 = performance.now();
    const c = (await CoordinatorLease.acquire(options("c")))!;
    expect(performance.now() - t0).toBeLessThan(LEASE_MS);
    expect(c.fence()).toBe(3);
    await c.stop(true);
    standby.abort();
  }, 30_000);
});
