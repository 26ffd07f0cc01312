/**
 * A running panel under fire: bad messages on every subject family (prompt, candidates, verdict,
 * pair, eval, control) — random bytes, wrong schemas, forged identities, an outsider, scores out
 * of range or repeated, a near-1 MB payload, copies reusing real message ids. Every bad message
 * ends in the dead-letter stream with its reason, none is counted, no valid message is lost, and
 * the pairs equal an independent recomputation from the members' valid verdicts.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { addToTally, newTally, votePrompt } from "../../coordinator/voting.ts";
import { authorOfCandidate, STREAMS, encode, messageIdFor, readStored, subjects, type DeadLetter, type MessageOf } from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const MEMBERS = ["ann", "ben", "cat"];
const PROMPTS = 12;
const raw = new Packr({ useRecords: false });

describe("a panel under fire", () => {
  it("dead-letters every bad message with its reason, counts none and loses nothing", async () => {
    await using p = await startPanel(
      { experiment: "fuzz", iterations: 1, promptsPerIteration: PROMPTS, k: 2, temperature: 1, poolSeed: 17, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT },
    );
    const ckpt = await p.randomCheckpoints(MEMBERS);
    for (const m of MEMBERS) p.startActor(m, ckpt[m]!);
    p.startCoordinator();
    await p.waitFor("the iteration to open", async () => (await p.control()).some((e) => e.event === "iteration_opened"));
    const prompts = await p.waitFor("the prompts", async () => {
      const ps = await p.stored("prompt", "prompt");
      return ps.length === PROMPTS && ps;
    });
    const ann = await p.waitFor("a candidate batch of ann", async () => (await p.stored("cand", "candidates")).find((c) => c.author === "ann"));
    const realVerdict = await p.waitFor("a verdict on ann", async () => (await p.stored("verdict", "verdict")).find((v) => v.authors.includes("ann")));

    const js = jetstream(p.nc);
    const bad: { subject: string; seq: number; reason: DeadLetter["reason"]; what: string }[] = [];
    const fire = async (what: string, subject: string, data: Uint8Array, reason: DeadLetter["reason"]) => {
      const ack = await js.publish(subject, data);
      bad.push({ subject, seq: ack.seq, reason, what });
    };
    const exp = "fuzz";
    const likert = { helpfulness: 5, correctness: 5, coherence: 5, complexity: 5, verbosity: 5 };
    const outsiderBatch: MessageOf<"candidates"> = {
      ...ann,
      author: "mallory",
      candidates: ann.candidates.map((c, i) => ({ candidateId: `${ann.promptId}:mallory:${i}`, text: "mallory was here" })),
    };
    // Forged verdicts score ann's candidates only (a verdict lists the authors it scores).
    const verdictOn = (judge: string, scores: ({ candidateId: string } & Record<string, unknown>)[]) => ({
      ...realVerdict,
      judge,
      authors: [...new Set(scores.map((s) => authorOfCandidate(realVerdict.promptId, s.candidateId)!))].sort(),
      scores,
    });

    await fire("random bytes as a prompt", subjects.prompt(exp, 1), randomBytes(200), "malformed");
    await fire("random bytes as candidates", subjects.candidates(exp, 1, "ann"), randomBytes(64), "malformed");
    await fire("a 900 KB payload", subjects.candidates(exp, 1, "ben"), randomBytes(900 * 1024), "malformed");
    await fire(
      "ann's candidates published as ben",
      subjects.candidates(exp, 1, "ben"),
      encode({ ...ann, promptId: prompts[1]!.promptId, candidates: ann.candidates.map((c, i) => ({ ...c, candidateId: `${prompts[1]!.promptId}:ann:${i}` })) }),
      "identity_mismatch",
    );
    await fire("an outsider's candidates", subjects.candidates(exp, 1, "mallory"), encode(outsiderBatch), "not_member");
    await fire("a verdict on the candidates subject", subjects.candidates(exp, 1, "ben"), encode({ ...realVerdict, judge: "ben" }), "invalid");
    await fire(
      "a score of 6",
      subjects.verdict(exp, 1, "cat"),
      raw.pack(verdictOn("cat", [{ candidateId: realVerdict.scores[0]!.candidateId, likert: { ...likert, correctness: 6 } }])),
      "invalid",
    );
    await fire(
      "one candidate scored twice",
      subjects.verdict(exp, 1, "cat"),
      raw.pack(
        verdictOn("cat", [
          { candidateId: realVerdict.scores[0]!.candidateId, likert },
          { candidateId: realVerdict.scores[0]!.candidateId, likert },
        ]),
      ),
      "invalid",
    );
    await fire(
      "another batch's candidate scored",
      subjects.verdict(exp, 1, "cat"),
      raw.pack({ ...realVerdict, judge: "cat", authors: ["ann"], scores: [{ candidateId: `${realVerdict.promptId}:ben:0`, likert }] }),
      "invalid",
    );
    await fire(
      "an outsider's verdict",
      subjects.verdict(exp, 1, "mallory"),
      encode(verdictOn("mallory", [{ candidateId: realVerdict.scores[0]!.candidateId, likert }]) as MessageOf<"verdict">),
      "not_member",
    );
    await fire(
      "ben's verdict published as cat",
      subjects.verdict(exp, 1, "cat"),
      encode(verdictOn("ben", [{ candidateId: realVerdict.scores[0]!.candidateId, likert }]) as MessageOf<"verdict">),
      "identity_mismatch",
    );
    await fire("random bytes as a pair", subjects.pair(exp, 1), randomBytes(100), "malformed");
    await fire(
      "an evaluation out of range",
      subjects.evaluation(exp, 1, "ann"),
      raw.pack(msg.evaluation({ experiment: exp, iteration: 1, peer: "ann", modelVersion: "m", suites: { a: 7 }, average: 7, items: 1 })),
      "invalid",
    );
    await fire(
      "ann's training reported as mallory",
      subjects.control(exp, "training_done", "mallory"),
      encode(
        msg.control(
          "training_done",
          { iteration: 1, peer: "ann", modelVersion: "m", result: { steps: 1, pairs: 1, lossFirst: 0, lossLast: 0, marginBefore: 0, marginAfter: 0, ms: 0 } },
          exp,
        ),
      ),
      "identity_mismatch",
    );
    await fire("random bytes as control", subjects.control(exp, "iteration_closed"), randomBytes(32), "malformed");
    // A copy reusing a stored message's id is dropped by the stream: it can replace nothing.
    const copy = await js.publish(
      subjects.verdict(exp, 1, realVerdict.judge),
      encode(
        verdictOn(
          realVerdict.judge,
          realVerdict.scores.map((s) => ({ candidateId: s.candidateId, likert: { ...likert, correctness: 1 } })),
        ) as MessageOf<"verdict">,
      ),
      { msgID: messageIdFor(realVerdict) },
    );
    expect(copy.duplicate).toBe(true);

    await p.waitFor("the experiment to finish", async () => (await p.control()).some((e) => e.event === "experiment_done"));
    // Every bad message is in the dead-letter stream with its reason.
    let letters: MessageOf<"dead_letter">[] = [];
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
      letters = (await readStored(p.nc, STREAMS.dead.name, subjects.all(exp, "dead"), "dead_letter")).messages;
      if (bad.every((b) => letters.some((d) => d.subject === b.subject && d.streamSeq === b.seq))) break;
    }
    for (const b of bad) {
      const reasons = letters.filter((d) => d.subject === b.subject && d.streamSeq === b.seq).map((d) => d.reason);
      expect(reasons, b.what).toContain(b.reason);
    }

    // Nothing valid was lost: every member answered every prompt and judged every other member.
    const cands = await p.stored("cand", "candidates");
    for (const m of MEMBERS) expect(new Set(cands.filter((c) => c.author === m).map((c) => c.promptId)).size).toBe(PROMPTS);
    const members = new Set(MEMBERS);
    const { messages: verdicts } = await readStored(p.nc, STREAMS.verdicts.name, subjects.all(exp, "verdict"), "verdict", { roster: () => members });
    // every (judge, author) of every prompt scored once, in one verdict per judge and prompt as a rule
    const judged = verdicts.flatMap((v) => v.authors.map((a) => `${v.promptId}|${v.judge}|${a}`));
    expect(new Set(judged).size).toBe(PROMPTS * MEMBERS.length * (MEMBERS.length - 1));
    expect(judged).toHaveLength(new Set(judged).size);
    expect(verdicts.length).toBeLessThan(judged.length);

    // The pairs are what the members' valid messages give, recomputed here from the streams.
    const tallies = new Map(prompts.map((q) => [q.promptId, newTally(q)]));
    const { messages: memberCands } = await readStored(p.nc, STREAMS.candidates.name, subjects.all(exp, "cand"), "candidates", { roster: () => members });
    for (const m of [...memberCands, ...verdicts]) addToTally(tallies.get(m.promptId)!, m);
    const expected = [...tallies.values()].flatMap((t) => votePrompt(t, p.config.voting, { judges: members }));
    const pairs = await p.stored("pair", "pair");
    const sig = (x: MessageOf<"pair">) => `${x.pairId}|${x.chosen.candidateId}|${x.rejected.candidateId}|${x.judges.join(",")}`;
    expect(pairs.map(sig).sort()).toEqual(expected.map(sig).sort());
    expect(pairs.every((x) => !x.judges.includes("mallory") && x.chosen.author !== "mallory" && x.rejected.author !== "mallory")).toBe(true);
    // The forged training report did not count: each member reported its own training once.
    const done = (await p.control())
      .filter((e) => e.event === "training_done")
      .map((e) => (e as { peer: string }).peer)
      .sort();
    expect(done).toEqual(MEMBERS);
  }, 300_000);
});
