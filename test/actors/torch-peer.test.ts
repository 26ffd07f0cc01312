/**
 * The PyTorch peer (actors/process-peer/torch_peer): its Python unit tests (PNG decoding, seeded
 * sampling, judge distributions, a SimPO run lowering the loss, the wire, a seeded pretraining),
 * the shipped weights behind the process backend, and one short panel iteration where it
 * answers, judges, trains and is benchmarked beside two tiny members over a real nats-server.
 * Skipped, saying why, only where no interpreter can import torch (see deploy/ops/setup.sh).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ProcessBackend } from "../../actors/models/process/backend.ts";
import { shippedCheckpoint } from "../../actors/models/tiny/checkpoints.ts";
import { writeTinyBenchmark } from "../../actors/models/tiny/bench-export.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";
import { PYTHON_MEMBER, TORCH_PEER_DIR, torchPeerActorArgs, torchPython, TorchMissingError } from "../../deploy/demo/python-member.ts";
import { CRITERIA } from "../../protocol/mod.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";
import { removeScratch, scratchDir } from "../support/scratch.ts";

const python = (() => {
  try {
    return torchPython();
  } catch (error) {
    if (!(error instanceof TorchMissingError)) throw error;
    console.warn(`skipping the PyTorch peer's tests: ${error.message}`);
    return undefined;
  }
})();
const dir = scratchDir("pop-torch-");
afterAll(() => removeScratch(dir));

describe.skipIf(!python)("the PyTorch peer", () => {
  it("passes its Python unit tests", () => {
    const r = spawnSync(python!, ["-m", "unittest", "torch_peer.test_torch_peer"], { cwd: dirname(TORCH_PEER_DIR), encoding: "utf8", timeout: 240_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  }, 250_000);

  it("ships weights that answer and judge through the process backend", async () => {
    expect(existsSync(join(TORCH_PEER_DIR, "weights", "pytorch.pt"))).toBe(true);
    const backend = await ProcessBackend.open({ command: `${python} ${TORCH_PEER_DIR}`, workDir: join(dir, "work"), stopGraceMs: 2000 });
    try {
      expect(backend.train).toBeDefined();
      expect(backend.exportWeights).toBeDefined();
      expect((await backend.info()).version).toMatch(/^torch-peer-[0-9a-f]{16}$/);
      const prompts = poolPrompts(7, 0, 6);
      const answers = await backend.generate(prompts, { k: 3, temperature: 0.7, seed: 5 });
      expect(answers.map((a) => a.length)).toEqual([3, 3, 3, 3, 3, 3]);
      expect(await backend.generate(prompts, { k: 3, temperature: 0.7, seed: 5 })).toEqual(answers);
      const judgements = await backend.judge(prompts.map((p, i) => ({ prompt: p, answer: answers[i]![0]! })));
      for (const j of judgements) {
        if ("abstained" in j) throw new Error(`abstained: ${j.abstained}`);
        for (const c of CRITERIA) {
          expect(j.likert[c]).toBeGreaterThanOrEqual(1);
          expect(j.likert[c]).toBeLessThanOrEqual(5);
        }
      }
    } finally {
      await backend.dispose();
    }
  }, 120_000);

  it("answers, judges, trains and is benchmarked beside tiny members for an iteration", async () => {
    await using panel = await startPanel(
      { experiment: "torchpeer", iterations: 1, promptsPerIteration: 6, k: 2, temperature: 1, poolSeed: 29, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH },
      { benchItems: 5 },
    );
    panel.startActor("ocrdumb", shippedCheckpoint("ocrdumb")!);
    panel.startActor("lostspace", shippedCheckpoint("lostspace")!);
    const bench = writeTinyBenchmark(join(panel.dir, "bench"), 5);
    panel.spawn(PYTHON_MEMBER, [
      "actor",
      "--peer",
      PYTHON_MEMBER,
      ...torchPeerActorArgs(python!, { workDir: join(panel.dir, "work"), bench }),
      ...panel.network.flags(),
      "--experiment",
      panel.config.experiment,
    ]);
    panel.startCoordinator();
    await panel.waitFor("the iteration to finish", async () => (await panel.control()).some((e) => e.event === "experiment_done"), 240_000);
    const cands = (await panel.stored("cand", "candidates")).filter((c) => c.author === PYTHON_MEMBER);
    expect(new Set(cands.map((c) => c.promptId)).size, panel.logTails()).toBe(6);
    const verdicts = (await panel.stored("verdict", "verdict")).filter((v) => v.judge === PYTHON_MEMBER);
    expect(verdicts.length, panel.logTails()).toBeGreaterThan(0);
    const done = (await panel.control()).find((e) => e.event === "training_done" && e.peer === PYTHON_MEMBER);
    expect(done, panel.logTails()).toBeDefined();
    expect(existsSync(join(panel.dir, "work", "torchpeer", PYTHON_MEMBER, "iter-1", "adapter", "model.pt"))).toBe(true);
    // Benchmarked before and after its training, on the six tiny suites.
    const evals = (await panel.stored("eval", "evaluation")).filter((e) => e.peer === PYTHON_MEMBER);
    expect(evals.map((e) => e.iteration).sort()).toEqual([0, 1]);
    expect(Object.keys(evals[0]!.suites).sort()).toEqual(["colour", "count", "existence", "ocr", "shape", "spatial"]);
  }, 300_000);
});
