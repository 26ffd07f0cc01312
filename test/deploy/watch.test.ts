import { describe, expect, it } from "vitest";
import type { Member, MessageOf } from "../../protocol/mod.ts";
import { WatchState } from "../../deploy/observe/watch/state.ts";
import { renderWatch } from "../../deploy/observe/watch/render.ts";
import * as msg from "../support/messages.ts";

type TrainResult = Extract<MessageOf<"control">, { event: "training_done" }>["result"];

const T = Date.parse("2026-11-28T12:00:00Z");
const experiment = "demo";
const member = (peer: string, extra: Partial<Member> = {}): Member =>
  msg.member({
    experiment,
    peer,
    instance: `${peer}-1`,
    modelVersion: `${peer}v000000000001`,
    host: "lab1",
    pid: 42,
    joinedAt: T - 60_000,
    heartbeatAt: T - 500,
    ...extra,
  });
const cand = (promptId: string, author: string, at: number) => msg.candidates({ experiment, promptId, author, modelVersion: "m", createdAt: at });
// No scores: the view counts verdicts, it does not read them.
const verdict = (promptId: string, judge: string, author: string, at: number) =>
  msg.verdict({ experiment, promptId, judge, modelVersion: "m", scored: { [author]: [] }, createdAt: at });

describe("pop watch's view", () => {
  it("shows members, the iteration's progress against its totals, rates, scores and dead letters", () => {
    const s = new WatchState("demo");
    s.member("demo.alice.a1", member("alice", { activity: { doing: "training", iteration: 1, done: 12, total: 40 } }));
    s.member("demo.bob.b1", member("bob"));
    // bob restarted: the older process's record goes, the newer one is shown
    s.member("demo.bob.b0", member("bob", { instance: "bob-0", heartbeatAt: T - 20_000 }));
    s.member("demo.bob.b0", undefined);
    s.add(msg.evaluation({ experiment, peer: "alice", modelVersion: "m", suites: { ocr: 0.5 }, average: 0.5, items: 10, at: T - 50_000 }), T - 50_000);
    s.add(msg.evaluation({ experiment, peer: "bob", modelVersion: "m", suites: { ocr: 0.7 }, average: 0.7, items: 10, at: T - 50_000 }), T - 50_000);
    s.add(msg.control("iteration_opened", { iteration: 1, peers: ["alice", "bob"], prompts: 3, at: T - 8_000 }, experiment), T - 8_000);
    s.add(cand("p1", "alice", T - 5_000), T - 5_000);
    s.add(cand("p1", "bob", T - 1_000), T - 1_000);
    s.add(verdict("p1", "bob", "alice", T - 4_000), T - 4_000);
    s.add(
      msg.deadLetter({
        experiment,
        reason: "identity_mismatch",
        detail: "verdict from 'mallory' on a subject of 'bob'",
        subject: "pop.demo.verdict.1.bob",
        stream: "POP_VERDICTS",
        streamSeq: 9,
        at: T - 2_000,
      }),
      T - 2_000,
    );

    const view = renderWatch(s, T).join("\n");
    expect(view).toMatch(/^alice +training 12\/40 +alicev0000000000 +0\.5 s ago +lab1 pid 42, tiny$/m);
    expect(view).toMatch(/^bob +answering +bobv/m);
    expect(view).toMatch(/iteration 1, opened 8\.0 s ago: 3 prompts, panel alice, bob/);
    // 2 peers x 3 prompts answers; each of 2 peers judges the other's 3: 6 verdicts
    expect(view).toMatch(/answers +\[#+\.+\] +2 of 6 +0\.2\/s, about 20 s to go/);
    expect(view).toMatch(/verdicts +\[#*\.+\] +1 of 6/);
    expect(view).toMatch(
      /^messages\/s over the last 10 s: prompt 0\.0, candidates 0\.2, verdict 0\.1, pair 0\.0, evaluation 0\.0, control 0\.1, dead_letter 0\.1$/m,
    );
    expect(view).toMatch(/^alice +50\.0$/m);
    expect(view).toMatch(/^panel +60\.0$/m);
    expect(view).toMatch(/dead letters: 1 \(latest first\)\n +11:59:58 identity_mismatch +pop\.demo\.verdict\.1\.bob  verdict from 'mallory'/);

    // once closed: pairs kept and who has trained
    s.add(msg.control("iteration_closed", { iteration: 1, pairs: 2, voted: 3, at: T }, experiment), T);
    // No result: the view reads who trained, not how.
    s.add(msg.control("training_done", { iteration: 1, peer: "bob", modelVersion: "m2", result: {} as TrainResult, at: T }, experiment), T);
    const after = renderWatch(s, T + 1000).join("\n");
    expect(after).toMatch(/pairs +2 kept from 3 prompts voted \(closed\)/);
    expect(after).toMatch(/trained +1 of 2 \(bob\)/);
  });

  it("shows model cost per iteration, member and phase, and per prompt: finished iterations from training_done, the running one from heartbeats summed over a member's processes", () => {
    const s = new WatchState("demo");
    s.add(msg.control("iteration_opened", { iteration: 1, peers: ["alice", "bob"], prompts: 4, at: T }, experiment), T);
    s.add(msg.control("iteration_opened", { iteration: 2, peers: ["alice", "bob"], prompts: 8, at: T }, experiment), T);
    s.add(msg.trainingDone(1, "alice", msg.phaseCost(4, { train: msg.usage(1) }), experiment), T);
    // Announced again after a restart with less counted: the fuller count stands.
    s.add(msg.trainingDone(1, "alice", msg.phaseCost(1), experiment), T);
    const live = { total: msg.phaseCost(8), iterations: [{ iteration: 2, phases: { answer: msg.usage(8) } }] };
    s.member("demo.bob.b1", member("bob", { cost: live }));
    s.member("demo.bob.b2", member("bob", { instance: "bob-2", cost: live }));
    const rows = s.costs();
    expect(rows.map((r) => [r.iteration, r.peer, r.phase, r.requests])).toEqual([
      [1, "alice", "answer", 4],
      [1, "alice", "judge", 4],
      [1, "alice", "train", 1],
      [2, "bob", "answer", 16],
    ]);
    expect(rows[0]).toMatchObject({ promptTokens: 40, completionTokens: 12, seconds: 2, prompts: 4, perPrompt: { requests: 1, tokens: 13, seconds: 0.5 } });
    expect(rows[3]!.perPrompt).toEqual({ requests: 2, tokens: 26, seconds: 1 });
    const screen = renderWatch(s, T).join("\n");
    expect(screen).toMatch(/model cost/);
    expect(screen).toMatch(/bob\s+2 answer\s+16\s+160\/48\s+8\.0\s+2\s+26\s+1\.00/);
  });
});

describe("pop watch: the coordinator's leader", () => {
  it("shows who leads, since when and with which token, and a takeover replaces it", () => {
    const state = new WatchState("exp1");
    expect(renderWatch(state, 10_000)[1]).toMatch(/^coordinator: no lease yet/);
    state.add(msg.leaseRecord({ instance: "coord-b", token: 3, since: 1_000, renewedAt: 9_000 }), 9_000);
    state.add(msg.leaseRecord({ instance: "coord-a", token: 2, since: 0, renewedAt: 500 }), 9_500); // an older one, late
    expect(renderWatch(state, 10_000)[1]).toBe("coordinator: coord-b leads since 00:00:01 (9.0 s), token 3, renewed 1.0 s ago");
  });
});
