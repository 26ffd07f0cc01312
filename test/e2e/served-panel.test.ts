/**
 * Three peers with `--backend openai`, each talking to its own `pop serve`, run an iteration of
 * the PoP loop over NATS; the same checkpoints run in process (`--backend tiny`) on the same
 * prompts beside them. Greedy answers make the candidates the same, so verdicts and pairs must
 * agree within judging noise. One peer's server is down when the iteration opens: its prompts
 * go back to the stream and are answered once it is up, nothing lost.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { JUDGE_TEMPERATURE, TinyBackend } from "../../actors/models/tiny/backend.ts";
import { writeTinyBenchmark } from "../../actors/models/tiny/bench-export.ts";
import { FAMILIES } from "../../actors/models/tiny/world.ts";
import { collectRun } from "../../deploy/observe/report/collect.ts";
import { buildReport, formatTable } from "../../deploy/observe/report/report.ts";
import { shippedCheckpoint } from "../../actors/models/tiny/checkpoints.ts";
import type { MessageOf } from "../../protocol/mod.ts";
import { freePort } from "../support/ports.ts";
import { startFaultProxy } from "../support/fault-proxy.ts";
import { startPanel, type Panel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const MEMBERS = ["countless", "lostspace", "ocrdumb"];
const CLI = fileURLToPath(new URL("../../deploy/cli/cli.ts", import.meta.url));
const PROMPTS = 16;
const settings = (experiment: string) => ({ experiment, iterations: 1, promptsPerIteration: PROMPTS, k: 2, temperature: 0, poolSeed: 21, minPeers: 3 });

describe("peers served over the OpenAI API", () => {
  it("run the loop and give the verdicts and pairs the in-process models give", async () => {
    // Two panels, each on a server of its own: the same prompts answered in process and served.
    await using inProcess = await startPanel(settings("inproc"), { voting: VOTE_EVERY_PROMPT });
    await using served = await startPanel(settings("served"), { voting: VOTE_EVERY_PROMPT });
    for (const m of MEMBERS) inProcess.startActor(m, shippedCheckpoint(m)!);
    inProcess.startCoordinator();

    const urls: Record<string, string> = {};
    for (const m of MEMBERS) {
      const port = await freePort();
      served.spawn(`serve-${m}`, ["serve", "--peer", m, "--port", String(port)]);
      urls[m] = `http://127.0.0.1:${port}`;
    }
    await served.waitFor(
      "the model servers",
      async () =>
        (
          await Promise.all(
            MEMBERS.map((m) =>
              fetch(`${urls[m]}/v1/models`).then(
                (r) => r.ok,
                () => false,
              ),
            ),
          )
        ).every(Boolean),
      60_000,
    );
    // ocrdumb's server is reachable for the start-up check but down for answering and judging.
    await using proxy = await startFaultProxy(urls.ocrdumb!);
    proxy.down = true;
    const judge = ["--judge-temperature", String(JUDGE_TEMPERATURE)];
    // countless is benchmarked through its server on the tiny suites written as a benchmark file.
    const bench = writeTinyBenchmark(join(served.dir, "bench"), 5);
    served.startServedActor("countless", `${urls.countless}/v1`, "countless", [...judge, "--bench", bench]);
    served.startServedActor("lostspace", `${urls.lostspace}/v1`, "lostspace", judge);
    const flaky = served.startServedActor("ocrdumb", proxy.baseUrl, "ocrdumb", [...judge, "--retries", "1"]);
    served.startCoordinator();
    await served.waitFor("the served peer to fail on its down server", async () => readFileSync(flaky.logFile, "utf8").includes("failed 2 times"), 120_000);
    const seenWhileDown = proxy.chats;
    proxy.down = false;

    const done = (p: Panel) =>
      p.waitFor(`${p.config.experiment} to finish`, async () => (await p.control()).some((e) => e.event === "experiment_done"), 240_000);
    await Promise.all([done(inProcess), done(served)]);
    expect(proxy.chats).toBeGreaterThan(seenWhileDown);

    const [candsA, candsB] = await Promise.all([inProcess.stored("cand", "candidates"), served.stored("cand", "candidates")]);
    // Every prompt answered by every member, the down one included.
    for (const cands of [candsA, candsB])
      for (const m of MEMBERS) expect(new Set(cands.filter((c) => c.author === m).map((c) => c.promptId)).size).toBe(PROMPTS);
    const textsOf = (cs: MessageOf<"candidates">[]) => new Map(cs.map((c) => [`${c.promptId}|${c.author}`, c.candidates.map((x) => x.text).join("\u0000")]));
    const [ta, tb] = [textsOf(candsA), textsOf(candsB)];
    const sameBatches = [...ta.keys()].filter((k) => ta.get(k) === tb.get(k));
    // Greedy answers of the same weights; a near-tie between two tokens could differ in the last float bit.
    expect(sameBatches.length).toBeGreaterThanOrEqual(Math.floor(0.95 * ta.size));

    // Verdicts: a judge's scores of the same answer agree to judging noise (float rounding).
    const [verdA, verdB] = await Promise.all([inProcess.stored("verdict", "verdict"), served.stored("verdict", "verdict")]);
    expect(verdB).toHaveLength(verdA.length);
    expect(verdB.every((v) => v.scores.every((s) => s.likert))).toBe(true); // logprob judging never abstained
    const scoreOf = (vs: MessageOf<"verdict">[]) => {
      const out = new Map<string, number[]>();
      for (const v of vs) for (const s of v.scores) out.set(`${v.judge}|${s.candidateId}`, Object.values(s.likert!));
      return out;
    };
    const [sa, sb] = [scoreOf(verdA), scoreOf(verdB)];
    let compared = 0;
    for (const key of sameBatches) {
      const [promptId, author] = key.split("|");
      for (const j of MEMBERS.filter((m) => m !== author)) {
        for (let i = 0; i < 2; i++) {
          const id = `${j}|${promptId}:${author}:${i}`;
          const a = sa.get(id)!,
            b = sb.get(id)!;
          for (let c = 0; c < 5; c++) expect(Math.abs(a[c]! - b[c]!)).toBeLessThan(1e-3);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(PROMPTS * 3 * 2);

    // Pairs: the same prompts paired, with the same chosen and rejected scores.
    const [pairsA, pairsB] = await Promise.all([inProcess.stored("pair", "pair"), served.stored("pair", "pair")]);
    const byPrompt = new Map(pairsB.map((p) => [p.promptId, p]));
    const promptsAllSame = new Set(
      [...new Set(candsA.map((c) => c.promptId))].filter((p) => MEMBERS.every((m) => ta.get(`${p}|${m}`) === tb.get(`${p}|${m}`))),
    );
    let matched = 0;
    for (const a of pairsA.filter((p) => promptsAllSame.has(p.promptId))) {
      const b = byPrompt.get(a.promptId);
      expect(b, `a pair for ${a.promptId}`).toBeDefined();
      expect(Math.abs(a.chosen.score - b!.chosen.score)).toBeLessThan(1e-3);
      expect(Math.abs(a.rejected.score - b!.rejected.score)).toBeLessThan(1e-3);
      matched++;
    }
    // Prompts on which all three members answer alike make no pair; the rest must each make one.
    expect(matched).toBeGreaterThanOrEqual(4);
    expect(pairsB.filter((p) => promptsAllSame.has(p.promptId))).toHaveLength(matched);
    // The report's table holds the benchmarked served peer, with the same accuracies the embedded model gives itself.
    const report = buildReport(await collectRun(served.nc, "served"));
    expect(report.peers).toEqual(["countless"]);
    expect(report.suites.sort()).toEqual([...FAMILIES].sort());
    const own = await TinyBackend.load(shippedCheckpoint("countless")!, { benchItems: 5 });
    const ownScores = (await own.evaluate()).suites;
    await own.dispose();
    for (const it of report.iterations) expect(it.scores.countless).toEqual(ownScores);
    expect(formatTable(report)).toMatch(/countless\s+1\s/);
    // Where the time went, from the stored candidates' and verdicts' times (as the demo prints it); the server's version.
    const timing = report.timeline.iterations.find((t) => t.iteration === 1);
    expect(timing?.answering).toBeGreaterThanOrEqual(0);
    expect(timing?.collecting).toBeGreaterThanOrEqual(timing!.answering!);
    expect(report.versions?.natsServer).toMatch(/^\d+\.\d+\.\d+/);
    // Cost: each served member answered each prompt in one request (n = k; a prompt redelivered
    // or caught up is answered, and counted, again), with the tokens pop serve reported, and judged its peers.
    for (const m of MEMBERS) {
      const answer = report.cost?.find((r) => r.peer === m && r.iteration === 1 && r.phase === "answer");
      expect(answer, `${m}'s answering cost`).toMatchObject({ prompts: PROMPTS });
      expect(answer!.requests).toBeGreaterThanOrEqual(PROMPTS);
      expect(answer!.requests).toBeLessThanOrEqual(2 * PROMPTS);
      expect(answer!.promptTokens).toBeGreaterThan(0);
      expect(answer!.completionTokens).toBeGreaterThanOrEqual(answer!.requests);
      expect(report.cost?.find((r) => r.peer === m && r.iteration === 1 && r.phase === "judge")?.requests).toBeGreaterThan(0);
    }
    // pop revote with no flags keeps the run's own voting settings (thresholds 0 here), so it
    // recomputes exactly the stored pairs from the stored verdicts.
    const revote = spawnSync(process.execPath, ["--import", "tsx", CLI, "revote", "--experiment", "served", "--server", served.network.url], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(revote.status, revote.stderr).toBe(0);
    expect(revote.stdout).toMatch(new RegExp(`^\\s+1\\s+${PROMPTS}\\s+${pairsB.length}\\s+${pairsB.length}\\s+${pairsB.length}$`, "m"));
    const control = await served.control();
    // Served peers do not train; they still report, so the panel moves on.
    expect(control.filter((e) => e.event === "training_done").map((e) => (e as { result: { steps: number } }).result.steps)).toEqual([0, 0, 0]);
  }, 360_000);
});
