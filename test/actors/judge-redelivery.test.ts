/**
 * A judge's batch delivered again after its verdict is out (its ack lost in a site-cut, or
 * catch-up racing the inbox) is acked, not judged again: judged alone it would make a verdict
 * naming fewer authors, with another id, stored as a second verdict on the author (seen in the
 * chaos run's site-cut fault, seed 21).
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { PeerContext } from "../../actors/context.ts";
import { createRoles, stopRoles } from "../../actors/roles.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import {
  BUCKETS,
  PoolReader,
  STREAMS,
  encode,
  jetStreamOf,
  kvmOf,
  openBlobs,
  publishMessage,
  readStored,
  stateKeys,
  subjects,
  type Delivery,
  type MessageOf,
} from "../../protocol/mod.ts";
import { candidates, iterationRecord, progress } from "../support/messages.ts";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const EXP = "rejudge";

describe("a judge's batch delivered again", () => {
  it("is acked without a second verdict once the first is out", async () => {
    // A panel without processes: the test plays the coordinator, ann and ben; cat judges.
    await using panel = await startPanel(
      { experiment: EXP, iterations: 1, promptsPerIteration: 1, k: 2, temperature: 1, poolSeed: 5, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT },
    );
    const { nc, config, pool } = panel;
    const state = await kvmOf(nc).open(BUCKETS.state);
    const [p] = await (await PoolReader.open(await openBlobs(nc), pool.name))!.slice(0, 1);
    await state.put(
      stateKeys.iteration(EXP, 1),
      encode(iterationRecord({ experiment: EXP, peers: ["ann", "ben", "cat"], prompts: { pool: pool.name, offset: 0, count: 1 } })),
    );
    await state.put(stateKeys.progress(EXP), encode(progress({ experiment: EXP, phase: "collecting" })));
    const js = jetStreamOf(nc);
    const delivery = (author: string): Delivery<MessageOf<"candidates">> => ({
      message: candidates({
        experiment: EXP,
        promptId: p!.promptId,
        question: p!.question,
        images: p!.images,
        author,
        modelVersion: "m",
        texts: ["blue", "red"],
      }),
      subject: subjects.candidates(EXP, 1, author),
      deliveries: 1,
      streamSeq: 1,
    });
    for (const author of ["ann", "ben"]) await publishMessage(js, delivery(author).message);

    const backend = await TinyBackend.create(7);
    const ctx = await PeerContext.open({ nc, experiment: EXP, peer: "cat", instance: "t", backend, log: pino({ level: "silent" }), config });
    ctx.modelVersion = (await backend.info()).version;
    const roles = createRoles(ctx);
    const settled = async (outcomes: Awaited<ReturnType<typeof roles.judging.handle>>) =>
      Promise.all(outcomes.map((o) => (typeof o === "object" && "later" in o ? o.later : o)));
    try {
      expect(await settled(await roles.judging.handle([delivery("ann"), delivery("ben")]))).toEqual(["ack", "ack"]);
      // ann's batch again, as after a lost ack; and catch-up's way, at once.
      expect(await settled(await roles.judging.handle([{ ...delivery("ann"), deliveries: 2 }]))).toEqual(["ack"]);
      expect(await roles.judging.judge([delivery("ben").message])).toEqual(["ack"]);
      const verdicts = (await readStored(nc, STREAMS.verdicts.name, subjects.verdict(EXP, 1, "cat"), "verdict")).messages;
      expect(verdicts.map((v) => v.authors)).toEqual([["ann", "ben"]]);
    } finally {
      stopRoles(roles);
      await backend.dispose();
      ctx.fence.stop();
    }
  }, 60_000);
});
