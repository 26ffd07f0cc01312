import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackendError } from "../../actors/models/registry.ts";
import { canTrain, capabilitiesOf, type ModelBackend, type Trainer, type WeightStore } from "../../actors/models/contract.ts";
import { tinyPlug } from "../../actors/models/tiny/plug.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";

describe("a backend in a worker thread", () => {
  const dir = mkdtempSync(join(tmpdir(), "pop-worker-"));
  const file = join(dir, "m.bin");
  let backend: ModelBackend & Trainer & WeightStore;
  beforeAll(async () => {
    const local = await TinyBackend.create(5);
    writeFileSync(file, await local.exportWeights());
    await local.dispose();
    const opened = await tinyPlug.open({ weights: file, benchItems: 5 }, { peer: "m" });
    // the proxy has exactly the tiny backend's optional capabilities
    expect(capabilitiesOf(opened).sort()).toEqual(["evaluate", "exportWeights", "generateDetailed", "importWeights", "judgeDistributions", "train"]);
    if (!canTrain(opened)) throw new Error("the tiny backend trains");
    backend = opened;
  });
  afterAll(async () => {
    await backend?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the event loop free while the model trains", async () => {
    const prompts = poolPrompts(3, 0, 64);
    const pairs = prompts.map((prompt) => ({ prompt, chosen: "red", rejected: "two three" }));
    const before = (await backend.info()).version;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const t0 = performance.now();
    const progress: [number, number][] = [];
    const steps: unknown[] = [];
    const result = await backend.train(
      pairs,
      { beta: 2, gamma: 1, learningRate: 3e-4, epochs: 2, batchSize: 16, seed: 1 },
      {
        experiment: "w",
        peer: "p",
        iteration: 1,
        onProgress: (done, total, step) => {
          progress.push([done, total]);
          steps.push(step);
        },
      },
    );
    const ms = performance.now() - t0;
    clearInterval(timer);
    expect(result.steps).toBeGreaterThan(0);
    // Every step is reported across the thread, with the run's total: 2 epochs of 64/16 batches.
    expect(progress).toEqual(Array.from({ length: 8 }, (_, i) => [i + 1, 8]));
    // ... with each step's figures, which also make the run's training curve
    for (const s of steps)
      expect(s).toMatchObject({ loss: expect.any(Number), margin: expect.any(Number), terms: { simpo: expect.any(Number), nll: expect.any(Number) } });
    expect(result.curve?.map((p) => p[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(result.curve?.at(-1)?.[1]).toBeCloseTo(result.lossLast, 6);
    expect((await backend.info()).version).not.toBe(before);
    // Timers keep firing during the training call (a blocked loop would give ~0 ticks).
    expect(ticks).toBeGreaterThan((ms / 5) * 0.3);
  });

  it("reports a failing call as a BackendError and stays usable", async () => {
    await expect(backend.importWeights(new Uint8Array([1, 2, 3]))).rejects.toBeInstanceOf(BackendError);
    const answers = await backend.generate(poolPrompts(3, 0, 2), { k: 2, temperature: 1, seed: 2 });
    expect(answers.map((a) => a.length)).toEqual([2, 2]);
  });

  it("disposes at once while a long training runs, failing the training call", async () => {
    const other = await tinyPlug.open({ weights: file }, { peer: "m" });
    if (!canTrain(other)) throw new Error("the tiny backend trains");
    const pairs = poolPrompts(3, 0, 64).map((prompt) => ({ prompt, chosen: "red", rejected: "two three" }));
    const training = other.train(pairs, { beta: 2, gamma: 1, learningRate: 3e-4, epochs: 500, batchSize: 16, seed: 1 });
    training.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    await other.dispose();
    expect(performance.now() - t0).toBeLessThan(1_000);
    await expect(training).rejects.toBeInstanceOf(BackendError);
  });

  it("refuses a checkpoint that is not one", async () => {
    const bad = join(dir, "bad.bin");
    writeFileSync(bad, "not a model");
    await expect(tinyPlug.open({ weights: bad }, { peer: "m" })).rejects.toThrow(/cannot load tiny checkpoint/);
  });
});
