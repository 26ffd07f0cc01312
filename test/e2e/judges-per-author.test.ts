import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { JudgeAssignment, STREAMS, jetStreamOf, publishMessage, readStored, subjects } from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const CLI = fileURLToPath(new URL("../../deploy/cli/cli.ts", import.meta.url));

describe("judges sampled per author", () => {
  it("with one judge per author, votes every prompt, each judge judging only its assigned authors", async () => {
    const prompts = 8;
    const peers = ["ann", "ben", "cat", "dan"];
    await using panel = await startPanel(
      { experiment: "sampled", iterations: 1, promptsPerIteration: prompts, k: 2, temperature: 1, poolSeed: 15, minPeers: 4 },
      // A judge that waited for other authors would hold its ballot for the whole linger (and the vote with it).
      { voting: VOTE_EVERY_PROMPT, judging: { judgesPerAuthor: 1 }, deadlines: { voteMs: 600_000, trainMs: 600_000, trainQuorum: 1, judgeLingerMs: 60_000 } },
    );
    const ckpt = await panel.randomCheckpoints(peers);
    for (const p of peers) panel.startActor(p, ckpt[p]!);
    panel.startCoordinator();
    const closed = await panel.waitFor("iteration 1 to close", async () => (await panel.control()).find((e) => e.event === "iteration_closed"), 45_000);
    expect((closed as { voted: number }).voted).toBe(prompts);
    expect(await panel.iterationPeers(1)).toEqual(peers);

    // Every verdict covers exactly the authors its judge was assigned, in one message per prompt.
    const assignment = new JudgeAssignment("sampled", 1, peers, 1);
    const verdicts = await panel.stored("verdict", "verdict");
    expect(verdicts).toHaveLength(prompts * peers.length); // each judge has exactly one author per prompt
    for (const v of verdicts) expect(v.authors, `${v.judge} on ${v.promptId}`).toEqual(assignment.authorsOf(v.promptId, v.judge));
    const pairs = await panel.stored("pair", "pair");
    for (const p of pairs) {
      const allowed = [...assignment.judgesOf(p.promptId, p.chosen.author), ...assignment.judgesOf(p.promptId, p.rejected.author)];
      expect(p.judges.every((j) => allowed.includes(j))).toBe(true);
    }

    // The coordinator dead-letters a verdict on an author its judge was not assigned.
    const promptId = verdicts[0]!.promptId;
    const stranger = peers.find((a) => a !== "ann" && !assignment.assigned(promptId, "ann", a))!;
    const forged = msg.verdict({ experiment: "sampled", promptId, judge: "ann", scored: { [stranger]: [5, 5] }, createdAt: Date.now() });
    const { seq } = await publishMessage(jetStreamOf(panel.nc), forged);
    const letter = await panel.waitFor("the forged verdict to be dead-lettered", async () =>
      (await readStored(panel.nc, STREAMS.dead.name, subjects.all("sampled", "dead"), "dead_letter")).messages.find((d) => d.streamSeq === seq),
    );
    expect(letter.reason).toBe("invalid");
    expect(letter.detail).toContain("not assigned");

    // pop revote under the run's own settings gives its pairs back, written as a dataset whose images are there.
    const out = mkdtempSync(join(tmpdir(), "pop-revote-"));
    try {
      const revote = spawnSync(
        process.execPath,
        ["--import", "tsx", CLI, "revote", "--experiment", "sampled", "--server", panel.network.url, "--out", out, "--format", "jsonl"],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(revote.status, revote.stderr).toBe(0);
      expect(revote.stdout).toContain(`with 1 judge per author: ${pairs.length} of the ${pairs.length} stored pairs stay the same`);
      const records = readFileSync(join(out, "pairs-iter1.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { images: string[]; pair_id: string });
      expect(records.map((r) => r.pair_id).sort()).toEqual(pairs.map((p) => p.pairId).sort());
      for (const r of records) for (const image of r.images) expect(existsSync(image), image).toBe(true);
      expect(readdirSync(join(out, "images")).length).toBeGreaterThan(0);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
