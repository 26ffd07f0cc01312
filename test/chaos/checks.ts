/**
 * What every chaos run (test/chaos/chaos.ts) must end with, and what it measures.
 *
 * Checks, all read through the lease's fence (protocol/fence.ts) as every reader reads them:
 *   - every prompt has exactly one pair per iteration;
 *   - nothing refused as a stale leader's was counted: every close counts exactly the prompts'
 *     pairs, and no member trained on more pairs than the fenced stream holds for it (stale
 *     messages in the streams, dead-lettered as stale_leader, are fine and only noted);
 *   - no verdict is stored twice;
 *   - every pair is what a vote of the stored messages it counted gives (test/chaos/same-pairs.ts);
 *   - every member on an iteration's roll trained on it exactly once (waiting a while for a
 *     member that rejoined to catch up), and nobody else did.
 * Measures:
 *   - time to take over: from the fault to the first takeover of the lease after it (the
 *     lease record's fences say when each holder took the lead);
 *   - time lost: the fault hits iteration 1, iteration 2 runs undisturbed with the same
 *     settings, so the estimate is iteration 1's cycle (open to the next open) minus iteration
 *     2's (open to experiment_done); each cycle includes its training.
 */
import { Kvm } from "@nats-io/kv";
import { BUCKETS, FenceView, STREAMS, readRecord, readStored, stateKeys, subjects, type MessageOf } from "../../protocol/mod.ts";
import type { PanelNetwork } from "../support/networks.ts";
import type { Panel } from "../support/panel.ts";
import { pairsNotRevoted } from "./same-pairs.ts";
import { sleep, type Injected } from "./setup.ts";

/** What a run's checks found. */
export interface Checked {
  broke: string[];
  notes: string[];
  /** Fault to the lease's first takeover after it, ms. */
  takeoverMs?: number;
  /** Iteration 1's cycle minus iteration 2's, ms. */
  lostMs?: number;
}

/** How long a member that rejoined may take to train on what it missed. */
const CATCH_UP_MS = 90_000;

type Control = MessageOf<"control">;

export async function checkRun(p: Panel<PanelNetwork>, o: { peers: string[]; prompts: number; iterations: number; injected?: Injected }): Promise<Checked> {
  const exp = p.config.experiment;
  const broke: string[] = [];
  const notes: string[] = [];
  const kv = await new Kvm(p.nc).open(BUCKETS.state);
  const fence = await FenceView.read(kv, exp);
  const fenced = async <T extends "pair" | "control" | "prompt">(stream: string, kind: "pair" | "ctl" | "prompt", type: T) => {
    const { messages, skipped } = await readStored(p.nc, stream, subjects.all(exp, kind), type, { fence });
    const stale = skipped.filter((s) => s.reason.startsWith("stale_leader")).length;
    if (stale) notes.push(`${stale} stale ${kind} message(s) refused (not counted)`);
    return messages;
  };

  const pairs = await fenced(STREAMS.pairs.name, "pair", "pair");
  for (let it = 1; it <= o.iterations; it++) {
    const ids = pairs.filter((x) => x.iteration === it).map((x) => x.promptId);
    if (ids.length !== o.prompts || new Set(ids).size !== o.prompts)
      broke.push(`iteration ${it}: ${ids.length} pairs for ${new Set(ids).size} of ${o.prompts} prompts`);
  }
  const verdicts = await p.stored("verdict", "verdict");
  // One verdict per judge and prompt covers its authors; none may be scored twice by a judge.
  const keys = verdicts.flatMap((v) => v.authors.map((a) => `${v.iteration}|${v.promptId}|${v.judge}|${a}`));
  if (new Set(keys).size !== keys.length) broke.push(`${keys.length - new Set(keys).size} verdicts on an author stored twice`);

  const rolls = new Map<number, string[]>();
  for (let it = 1; it <= o.iterations; it++) {
    rolls.set(it, (await readRecord(kv, stateKeys.iteration(exp, it), "iteration"))?.peers ?? o.peers);
  }
  broke.push(
    ...pairsNotRevoted({
      experiment: exp,
      voting: p.config.voting,
      judgesPerAuthor: p.config.judging.judgesPerAuthor,
      panels: rolls,
      prompts: await fenced(STREAMS.prompts.name, "prompt", "prompt"),
      candidates: await p.stored("cand", "candidates"),
      verdicts,
      pairs,
    }),
  );
  const trainings = (control: Control[]) => control.filter((e): e is Extract<Control, { event: "training_done" }> => e.event === "training_done");
  let control = await fenced(STREAMS.control.name, "ctl", "control");
  const caughtUp = (c: Control[]) => [...rolls].every(([it, roll]) => roll.every((peer) => trainings(c).some((e) => e.iteration === it && e.peer === peer)));
  for (const deadline = Date.now() + CATCH_UP_MS; !caughtUp(control) && Date.now() < deadline;) {
    await sleep(2000);
    control = await fenced(STREAMS.control.name, "ctl", "control");
  }
  for (const [it, roll] of rolls) {
    for (const close of control.filter((e) => e.event === "iteration_closed" && e.iteration === it)) {
      if (close.event === "iteration_closed" && close.pairs !== o.prompts) broke.push(`iteration ${it} closed counting ${close.pairs} pairs, not ${o.prompts}`);
    }
    for (const peer of o.peers) {
      const mine = trainings(control).filter((e) => e.iteration === it && e.peer === peer);
      const versions = new Set(mine.map((e) => e.modelVersion)).size;
      const expected = roll.includes(peer) ? 1 : 0;
      if (versions !== expected) broke.push(`${peer} trained ${versions} times on iteration ${it}${expected ? "" : " (not on its roll)"}`);
      const counted = pairs.filter((x) => x.iteration === it && (x.forPeer === undefined || x.forPeer === peer)).length;
      for (const e of mine) if (e.result.pairs > counted) broke.push(`${peer} trained on ${e.result.pairs} pairs of iteration ${it}; ${counted} count`);
    }
  }

  const lease = await readRecord(kv, stateKeys.lease(exp), "lease");
  const injected = o.injected;
  const takeover = injected && lease?.fences.find((f) => f.since >= injected.at);
  const opened = (it: number) => control.find((e) => e.event === "iteration_opened" && e.iteration === it)?.at;
  const done = control.find((e) => e.event === "experiment_done")?.at;
  const [open1, open2] = [opened(1), opened(2)];
  return {
    broke,
    notes,
    takeoverMs: takeover ? takeover.since - injected!.at : undefined,
    lostMs: open1 !== undefined && open2 !== undefined && done !== undefined ? open2 - open1 - (done - open2) : undefined,
  };
}
