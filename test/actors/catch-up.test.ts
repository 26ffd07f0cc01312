/**
 * A peer catches up on work never delivered to it (actors/catch-up.ts): against a real server
 * holding an open iteration's prompts and another member's candidates, and nothing from this
 * peer, catch-up answers every prompt and judges every batch (a bounded share per round, read a
 * bit per prompt); then a round finds nothing to do.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { catchUp } from "../../actors/catch-up.ts";
import { PeerContext } from "../../actors/context.ts";
import { createRoles, stopRoles } from "../../actors/roles.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import {
  PoolReader,
  openBlobs,
  STREAMS,
  consumers,
  controlEvent,
  encode,
  ensureConsumer,
  managerOf,
  kvmOf,
  BUCKETS,
  publishMessage,
  jetStreamOf,
  readStored,
  stateKeys,
  subjects,
  type Prompt,
} from "../../protocol/mod.ts";
import { candidates, iterationRecord, progress, prompt } from "../support/messages.ts";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const EXP = "catchup";
const PROMPTS = 6;

describe("catching up on undelivered work", () => {
  it("answers the prompts and judges the batches a peer never got, once", async () => {
    // A panel without processes: the test plays the coordinator and ann, the catch-up is cat's.
    await using panel = await startPanel(
      { experiment: EXP, iterations: 1, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 5, minPeers: 2 },
      { voting: VOTE_EVERY_PROMPT },
    );
    const { nc, config, pool } = panel;
    const state = await kvmOf(nc).open(BUCKETS.state);
    const prompts: Prompt[] = (await (await PoolReader.open(await openBlobs(nc), pool.name))!.slice(0, PROMPTS)).map((p) =>
      prompt({ experiment: EXP, promptId: p.promptId, question: p.question, images: p.images }),
    );
    await state.put(
      stateKeys.iteration(EXP, 1),
      encode(iterationRecord({ experiment: EXP, peers: ["ann", "cat"], prompts: { pool: pool.name, offset: 0, count: PROMPTS } })),
    );
    await state.put(stateKeys.progress(EXP), encode(progress({ experiment: EXP, phase: "collecting" })));
    const js = jetStreamOf(nc);
    for (const p of prompts) {
      await publishMessage(js, p);
      await publishMessage(
        js,
        candidates({ experiment: EXP, promptId: p.promptId, question: p.question, images: p.images, author: "ann", modelVersion: "m", texts: ["blue", "red"] }),
      );
    }

    const backend = await TinyBackend.create(7);
    const ctx = await PeerContext.open({ nc, experiment: EXP, peer: "cat", instance: "t", backend, log: pino({ level: "silent" }), config });
    ctx.modelVersion = (await backend.info()).version;
    const roles = createRoles(ctx);
    const tried = new Set<string>();
    // A round takes at most its share of the work (here 4); the next round does the rest.
    expect(await catchUp(ctx, roles, tried, 32, 4)).toEqual({ iteration: 1, answered: 4, judged: 4 });
    expect(await catchUp(ctx, roles, tried)).toEqual({ iteration: 1, answered: PROMPTS - 4, judged: PROMPTS - 4 });

    const cands = (await readStored(nc, STREAMS.candidates.name, subjects.candidates(EXP, 1, "cat"), "candidates")).messages;
    expect(cands.map((c) => c.promptId).sort()).toEqual(prompts.map((p) => p.promptId).sort());
    const verdicts = (await readStored(nc, STREAMS.verdicts.name, subjects.verdict(EXP, 1, "cat"), "verdict")).messages;
    expect(verdicts.flatMap((x) => x.authors.map((a) => `${x.promptId}|${a}`)).sort()).toEqual(prompts.map((p) => `${p.promptId}|ann`).sort());
    // Nothing left: a second round does nothing, also with a fresh memory of what it tried.
    expect(await catchUp(ctx, roles, new Set())).toEqual({ iteration: 1, answered: 0, judged: 0 });
    // The iteration closed and the close never came (its control consumer holds nothing): it trains, once.
    const control = consumers.peerControl(EXP, "cat");
    await ensureConsumer(await managerOf(nc), control);
    await state.put(stateKeys.progress(EXP), encode(progress({ experiment: EXP, phase: "training", at: 2 })));
    const triedNow = new Set<string>();
    // While the close waits in the consumer (or a process of this peer holds it), it is left to the inbox.
    await publishMessage(js, controlEvent(EXP, "iteration_closed", { iteration: 1, pairs: 0, voted: PROMPTS }));
    expect(await catchUp(ctx, roles, triedNow)).toEqual({ iteration: 1, answered: 0, judged: 0, trained: false });
    const close = await (await js.consumers.get(control.stream, control.config.durable_name!)).next({ expires: 2000 });
    expect(close).not.toBeNull();
    expect(await catchUp(ctx, roles, triedNow)).toEqual({ iteration: 1, answered: 0, judged: 0, trained: false });
    // Acked without training (the delivery that nats-server 2.9 loses): now it trains.
    await close!.ackAck();
    expect(await catchUp(ctx, roles, triedNow)).toEqual({ iteration: 1, answered: 0, judged: 0, trained: true });
    expect((await readStored(nc, STREAMS.control.name, subjects.all(EXP, "ctl"), "control")).messages.filter((e) => e.event === "training_done")).toHaveLength(
      1,
    );
    expect(await catchUp(ctx, roles, new Set())).toEqual({ iteration: 1, answered: 0, judged: 0, trained: false });
    // Done: nothing to look at.
    await state.put(stateKeys.progress(EXP), encode(progress({ experiment: EXP, phase: "done", at: 3 })));
    expect(await catchUp(ctx, roles, new Set())).toEqual({ answered: 0, judged: 0 });
    stopRoles(roles);
    await backend.dispose();
  });
});
