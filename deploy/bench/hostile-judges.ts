/**
 * Voting rules against hostile judges (`npm run bench:hostile`). The shipped tiny panel runs one
 * iteration with three more members beside it that answer honestly but judge as hostile judges:
 * one inverts its scores, one gives everything 5, one scores at random (pop actor
 * --hostile-judge). From the verdicts collected, every voting rule of coordinator/voting.ts
 * builds its pairs; each is compared with the honest panel's pairs (the mean over the honest
 * judges only), and the honest members are trained on each rule's pairs (the demo's SimPO
 * settings, from the shipped checkpoints) to see what the rule does to learning.
 *
 *   npm run bench:hostile -- [--prompts 1000] [--pool-seed 7] [--no-train] [--results DIR]
 *
 * Prints a table: per rule its pairs, how they compare with the honest panel's (same, another
 * choice, lost, added, inverted), and the honest members' mean benchmark gain after training.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scriptOptions } from "../cli/script-flags.ts";
import { simpoOptionsOf } from "../../actors/models/contract.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { shippedCheckpoint, shippedMembers } from "../../actors/models/tiny/checkpoints.ts";
import { learningRateOf } from "../../actors/training.ts";
import { addToTally, newTally, votePrompt, type PromptTally } from "../../coordinator/voting.ts";
import { AGGREGATES, STREAMS, ensureTopology, getImage, openBlobs, readStored, subjects, type PreferencePair, type VotingConfig } from "../../protocol/mod.ts";
import { connectNats, closeNats } from "../cli/connect.ts";
import { DEMO_DEFAULTS } from "../demo/defaults.ts";
import { createExperiment, experimentConfig, loadTinyPool } from "../ops/experiment.ts";
import { NatsServer } from "../ops/nats-server.ts";
import { PopProcess } from "../cli/processes.ts";
import { ResultsRun, commandLine } from "../observe/results/write.ts";

const HELP = `npm run bench:hostile [-- options]

The shipped panel plus three hostile judges (invert, all-5, random) run one iteration; every
voting rule votes on the same verdicts and is compared with the honest panel's pairs, then the
honest members are trained on each rule's pairs and benchmarked.

  --prompts N      prompts in the iteration                     default: 1000
  --pool-seed N    seed of the unlabeled prompt pool            default: ${DEMO_DEFAULTS.poolSeed}
  --no-train       compare the pairs only, train nothing
  --results DIR    where the results file goes (none: no file)  default: docs/results`;
const a = scriptOptions("bench:hostile", HELP, {
  prompts: "1000",
  "pool-seed": String(DEMO_DEFAULTS.poolSeed),
  "no-train": false,
  results: undefined,
});
const PROMPTS = Number(a.prompts);
const EXP = "hostile";
const HOSTILE = [
  ["inv", "invert"],
  ["five", "all-5"],
  ["rnd", "random"],
] as const;

const say = (line: string) => process.stderr.write(`[bench:hostile] ${line}\n`);

async function main(): Promise<void> {
  const resultsFile = new ResultsRun("bench-hostile", commandLine("bench:hostile", process.argv.slice(2)), a.results);
  const honest = shippedMembers();
  if (honest.length < 2) throw new Error("the shipped checkpoints are missing (actors/models/tiny/checkpoints)");
  const hostile = HOSTILE.map(([suffix, mode], i) => ({ name: `${suffix}`, mode, checkpoint: shippedCheckpoint(honest[i % honest.length]!)! }));
  const dir = mkdtempSync(join(tmpdir(), "pop-hostile-"));
  const server = await NatsServer.start({ dir: join(dir, "nats"), tiedToThisProcess: true });
  const processes: PopProcess[] = [];
  const t0 = Date.now();
  try {
    const nc = await connectNats(server.url, "bench-hostile");
    await ensureTopology(nc);
    const settings = {
      experiment: EXP,
      iterations: 1,
      promptsPerIteration: PROMPTS,
      k: DEMO_DEFAULTS.k,
      temperature: DEMO_DEFAULTS.temperature,
      poolSeed: Number(a["pool-seed"]),
      minPeers: honest.length + hostile.length,
    };
    await loadTinyPool(nc, settings.poolSeed, PROMPTS, EXP);
    const { config } = await createExperiment(nc, experimentConfig(settings, DEMO_DEFAULTS.overrides));
    const common = ["--server", server.url, "--experiment", EXP];
    processes.push(new PopProcess("coordinator", ["coordinator", ...common], join(dir, "coordinator.log")));
    for (const m of honest) processes.push(new PopProcess(m, ["actor", "--peer", m, "--checkpoint", shippedCheckpoint(m)!, ...common], join(dir, `${m}.log`)));
    for (const h of hostile)
      processes.push(
        new PopProcess(h.name, ["actor", "--peer", h.name, "--checkpoint", h.checkpoint, "--hostile-judge", h.mode, ...common], join(dir, `${h.name}.log`)),
      );
    say(
      `${honest.length} honest members (${honest.join(", ")}) and ${hostile.length} hostile judges (${hostile.map((h) => `${h.name}: ${h.mode}`).join(", ")}) on ${PROMPTS} prompts`,
    );

    for (;;) {
      const ctl = (await readStored(nc, STREAMS.control.name, subjects.all(EXP, "ctl"), "control")).messages;
      if (ctl.some((e) => e.event === "iteration_closed")) break;
      const dead = processes.find((p) => !p.running);
      if (dead) throw new Error(`${dead.name} ended early:\n${dead.logTail()}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    // The verdicts are in; what the panel trains on next is not part of this measurement.
    await Promise.all(processes.map((p) => p.stop(5000)));
    say(`collected in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    const [prompts, cands, verdicts] = await Promise.all([
      readStored(nc, STREAMS.prompts.name, subjects.all(EXP, "prompt"), "prompt"),
      readStored(nc, STREAMS.candidates.name, subjects.all(EXP, "cand"), "candidates"),
      readStored(nc, STREAMS.verdicts.name, subjects.all(EXP, "verdict"), "verdict"),
    ]);
    const tallies = new Map<string, PromptTally>();
    for (const p of prompts.messages) tallies.set(p.promptId, newTally(p));
    for (const m of [...cands.messages, ...verdicts.messages]) {
      const t = tallies.get(m.promptId);
      if (t) addToTally(t, m);
    }
    const voteAll = (voting: VotingConfig, judges?: ReadonlySet<string>) => [...tallies.values()].flatMap((t) => votePrompt(t, voting, { judges, now: 0 }));
    const reference = voteAll({ ...config.voting, aggregate: "mean" }, new Set(honest));
    const refBy = new Map(reference.map((p) => [p.promptId, p]));
    // Per rule, against the honest panel's pairs: the same preference (the same chosen and
    // rejected texts; among equal answers which copy is picked does not matter), another
    // preference for the prompt, one the honest panel has and the rule lost, one the rule added,
    // and one whose chosen text is the honest panel's rejected or the other way (inverted).
    // "honest judges only" rows show what a rule costs when nobody is hostile.
    const honestJudges = new Set(honest);
    const variants: [string, PreferencePair[], boolean][] = [
      ["honest panel (mean)", reference, true],
      ...AGGREGATES.map((r) => [`${r}, all judges`, voteAll({ ...config.voting, aggregate: r }), true] as [string, PreferencePair[], boolean]),
      ...AGGREGATES.filter((r) => r !== "mean").map(
        (r) => [`${r}, honest judges only`, voteAll({ ...config.voting, aggregate: r }, honestJudges), false] as [string, PreferencePair[], boolean],
      ),
    ];
    const rows: { rule: string; pairs: PreferencePair[]; train: boolean; same: number; other: number; lost: number; added: number; inverted: number }[] = [];
    for (const [rule, pairs, train] of variants) {
      const by = new Map(pairs.map((p) => [p.promptId, p]));
      const row = { rule, pairs, train, same: 0, other: 0, lost: 0, added: 0, inverted: 0 };
      for (const id of new Set([...by.keys(), ...refBy.keys()])) {
        const p = by.get(id);
        const r = refBy.get(id);
        if (!p) row.lost++;
        else if (!r) row.added++;
        else if (p.chosen.text === r.chosen.text && p.rejected.text === r.rejected.text) row.same++;
        else if (p.chosen.text === r.rejected.text || p.rejected.text === r.chosen.text) row.inverted++;
        else row.other++;
      }
      rows.push(row);
    }

    const gains = new Map<string, number>();
    if (!a["no-train"]) {
      const blobs = await openBlobs(nc);
      const images = new Map<string, Awaited<ReturnType<typeof getImage>>>();
      const inputOf = async (p: PreferencePair) => {
        const imgs = [];
        for (const ref of p.images) {
          if (!images.has(ref.hash)) images.set(ref.hash, await getImage(blobs, ref));
          imgs.push(images.get(ref.hash)!);
        }
        return { prompt: { id: p.promptId, question: p.question, images: imgs }, chosen: p.chosen.text, rejected: p.rejected.text };
      };
      const t = config.training;
      const before = new Map<string, number>();
      for (const m of honest) {
        const b = await TinyBackend.load(shippedCheckpoint(m)!);
        before.set(m, (await b.evaluate()).average);
        await b.dispose();
      }
      for (const row of rows.filter((x) => x.train)) {
        const inputs = await Promise.all(row.pairs.map(inputOf));
        let sum = 0;
        for (const m of honest) {
          const ts = Date.now();
          const b = await TinyBackend.load(shippedCheckpoint(m)!);
          await b.train(inputs, simpoOptionsOf(t, { learningRate: learningRateOf(t, 1), seed: 1 }));
          const after = (await b.evaluate()).average;
          await b.dispose();
          sum += after - before.get(m)!;
          say(`${row.rule}: ${m} ${(before.get(m)! * 100).toFixed(1)} -> ${(after * 100).toFixed(1)} (${((Date.now() - ts) / 1000).toFixed(0)} s)`);
        }
        gains.set(row.rule, sum / honest.length);
      }
    }
    await closeNats(nc);

    const lines = [
      `Hostile judges: ${honest.length} honest members + invert, all-5, random judges; ${PROMPTS} prompts, pool seed ${settings.poolSeed}, the demo's thresholds (chosen >= ${config.voting.minChosen}, margin >= ${config.voting.minMargin}).`,
      "",
      "| rule | pairs | same preference as honest panel | another preference | lost | added | inverted | honest members' gain (points) |",
      "|---|---|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${r.rule} | ${r.pairs.length} | ${r.same} | ${r.other} | ${r.lost} | ${r.added} | ${r.inverted} | ${gains.has(r.rule) ? (gains.get(r.rule)! * 100).toFixed(1) : "-"} |`,
      ),
    ];
    process.stdout.write(lines.join("\n") + "\n");
    say(`done in ${((Date.now() - t0) / 60000).toFixed(1)} min`);
    resultsFile.write({
      settings: {
        prompts: PROMPTS,
        "pool seed": settings.poolSeed,
        "min chosen": config.voting.minChosen,
        "min margin": config.voting.minMargin,
        train: !a["no-train"],
      },
      sections: [{ heading: "Voting rules against hostile judges", markdown: lines.join("\n") }],
    });
  } finally {
    await Promise.all(processes.map((p) => p.stop(5000)));
    await server.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench:hostile failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
