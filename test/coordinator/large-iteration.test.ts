/**
 * An iteration of 200,000 prompts opens against a real server: its record names the prompts as a
 * range of the pool (a few bytes, where a list of ids was 3.5 MB, over the server's 1 MB
 * max_payload), and the coordinator publishes only its window of them. Nobody answers them.
 */
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { Coordinator } from "../../coordinator/coordinator.ts";
import { experimentConfig, poolName } from "../../deploy/ops/experiment.ts";
import {
  BUCKETS,
  STREAMS,
  encode,
  ensureTopology,
  isKeyExists,
  isTooLarge,
  kvmOf,
  managerOf,
  memberKeys,
  openBlobs,
  readRecord,
  stateKeys,
  storePool,
  subjects,
} from "../../protocol/mod.ts";
import { member } from "../support/messages.ts";
import { cleanup, connectTo, eventually, startServer } from "../support/nats.ts";

const EXP = "large";
const PROMPTS = 200_000;
const IMAGE = { hash: `sha256-${"cd".repeat(32)}`, format: "png" as const, width: 8, height: 8 };

let nc: NatsConnection;
beforeAll(async () => {
  nc = await connectTo((await startServer()).url);
  await ensureTopology(nc);
});
afterAll(cleanup);

describe("an iteration of 200,000 prompts", () => {
  it("opens with a record of a few bytes and publishes only its window", { timeout: 120_000 }, async () => {
    const blobs = await openBlobs(nc);
    const pool = poolName(42);
    await storePool(
      blobs,
      { name: pool, experiment: EXP },
      (function* () {
        for (let i = 0; i < PROMPTS; i++) yield { promptId: `tiny-pool-42-${i}`, question: `what is in picture ${i}?`, images: [IMAGE] };
      })(),
    );
    const config = experimentConfig(
      { experiment: EXP, iterations: 1, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 42, minPeers: 1 },
      { openPrompts: 100 },
    );
    const members = await kvmOf(nc).open(BUCKETS.members);
    await members.put(memberKeys.instance(EXP, "ann", "host-1"), encode(member({ experiment: EXP, peer: "ann", heartbeatAt: Date.now() })));

    const abort = new AbortController();
    const coordinator = new Coordinator({ nc, experiment: EXP, config, log: pino({ level: "silent" }), tickMs: 100 });
    const running = coordinator.run(abort.signal);
    try {
      const state = await kvmOf(nc).open(BUCKETS.state);
      const entry = await eventually(() => state.get(stateKeys.iteration(EXP, 1)), 60_000, "the iteration's record");
      expect(entry.value.length).toBeLessThan(200);
      const record = await readRecord(state, stateKeys.iteration(EXP, 1), "iteration");
      expect(record).toMatchObject({ peers: ["ann"], prompts: { pool, offset: 0, count: PROMPTS } });
      await eventually(async () => (await readRecord(state, stateKeys.progress(EXP), "progress"))?.phase === "collecting", 30_000, "collecting");
      const jsm = await managerOf(nc);
      const published = await eventually(async () => {
        const info = await jsm.streams.info(STREAMS.prompts.name, { subjects_filter: subjects.prompt(EXP, 1) });
        return info.state.messages >= 100 ? info.state.messages : 0;
      });
      // The window (openPrompts), not the iteration.
      expect(published).toBe(100);
    } finally {
      abort.abort();
      await running;
    }
  });

  it("restarted, reads the prompts already out into a bit per prompt and publishes none of them again", { timeout: 120_000 }, async () => {
    const jsm = await managerOf(nc);
    const stored = async () => (await jsm.streams.info(STREAMS.prompts.name, { subjects_filter: subjects.prompt(EXP, 1) })).state.messages;
    expect(await stored()).toBe(100);
    const abort = new AbortController();
    const coordinator = new Coordinator({ nc, experiment: EXP, log: pino({ level: "silent" }), tickMs: 100 });
    const running = coordinator.run(abort.signal);
    try {
      await eventually(() => coordinator.iteration === 1, 60_000, "the new term to resume iteration 1");
      // A few ticks: every one would publish what the window lacks.
      await new Promise((r) => setTimeout(r, 1500));
      // Another fencing token would have made any prompt published again a new message.
      expect(await stored()).toBe(100);
    } finally {
      abort.abort();
      await running;
    }
  });

  it("tells a key that exists from a value refused for its size, by the library's error codes", async () => {
    const state = await kvmOf(nc).open(BUCKETS.state);
    await state.create("large.probe", new Uint8Array([1]));
    const exists = await state.create("large.probe", new Uint8Array([2])).catch((e: unknown) => e);
    expect([isKeyExists(exists), isTooLarge(exists)]).toEqual([true, false]);
    const big = await state.create("large.big", new Uint8Array(2 * 1024 * 1024)).catch((e: unknown) => e);
    expect([isKeyExists(big), isTooLarge(big)]).toEqual([false, true]);
  });
});
