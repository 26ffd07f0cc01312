/**
 * The trainer contract on the tiny model: `pop train` run as a separate program through the
 * actor's CommandTrainer trains exactly what the embedded trainer trains in process, and the
 * adapter travels as an archive named by its content.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";
import { CommandTrainer } from "../../actors/trainers/command-trainer.ts";
import { adapterVersion, AdapterArchiveError, packDir, unpackTo } from "../../actors/trainers/archive.ts";
import { CommandError } from "../../actors/process/command.ts";
import { TrainerOutputError } from "../../actors/trainers/workdir.ts";

const CLI = fileURLToPath(new URL("../../deploy/cli/cli.ts", import.meta.url));
const POP = `"${process.execPath}" --import tsx "${CLI}"`;
const BASE = "actors/models/tiny/checkpoints/lostspace.bin";
const SIMPO = { beta: 2, gamma: 1, learningRate: 1e-3, epochs: 2, batchSize: 8, sftWeight: 1, seed: 7 };

describe("the trainer contract", () => {
  const dir = mkdtempSync(join(tmpdir(), "pop-trainer-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pairs = poolPrompts(7, 0, 12).map((prompt, i) => ({ prompt, chosen: ["red", "square", "two", "a h t"][i % 4]!, rejected: "it is it" }));
  const run = { experiment: "exp", peer: "lostspace", iteration: 1 };

  it("pop train, run by the actor's CommandTrainer, trains what the in-process trainer trains, and continues from its adapter", async () => {
    const lines: string[] = [];
    const trainer = new CommandTrainer({
      command: `${POP} train --base ${BASE}`,
      workRoot: dir,
      baseModel: "lostspace",
      log: { info: (_f, m) => lines.push(m) },
    });
    const progress: [number, number, number | undefined][] = [];
    const first = await trainer.train(pairs, SIMPO, run, null, (done, total, step) => progress.push([done, total, step?.loss]));
    expect(first.result.steps).toBe(4); // 12 pairs in batches of 8, two epochs
    // Each step's line reached the caller while the trainer ran, and the curve is those steps.
    expect(progress.map(([d, t]) => [d, t])).toEqual([
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ]);
    expect(first.result.curve?.map((p) => p[0])).toEqual([1, 2, 3, 4]);
    expect(first.result.curve?.at(-1)?.[1]).toBeCloseTo(first.result.lossLast, 3);
    expect(first.result.marginAfter).toBeGreaterThan(first.result.marginBefore);
    expect(lines.some((l) => l.includes("pop train: iteration 1: 12 pairs"))).toBe(true);
    const settings = JSON.parse(readFileSync(join(dir, "exp/lostspace/iter-1/settings.json"), "utf8"));
    expect(settings).toMatchObject({
      format: "pop-trainer/1",
      iteration: 1,
      init_adapter: null,
      pair_count: 12,
      simpo: { beta: 2, gamma: 1, learning_rate: 1e-3, sft_weight: 1 },
    });
    const record = JSON.parse(readFileSync(settings.pairs, "utf8").split("\n")[0]);
    expect(record.prompt[0].content).toEqual([{ type: "image" }, { type: "text", text: pairs[0]!.prompt.question }]);
    expect(record.images[0]).toMatch(/^images\/[0-9a-f]{32}\.png$/);

    const inProcess = await TinyBackend.load(BASE);
    const mine = await inProcess.train(pairs, SIMPO);
    expect(first.result.lossLast).toBeCloseTo(mine.lossLast, 5);
    // The same curve as the in-process trainer's, to the printed precision.
    for (const [i, [step, loss, margin]] of mine.curve!.entries()) {
      expect(first.result.curve![i]![0]).toBe(step);
      expect(first.result.curve![i]![1]).toBeCloseTo(loss, 3);
      expect(first.result.curve![i]![2]).toBeCloseTo(margin, 3);
    }
    const trained = await TinyBackend.load(join(first.adapterDir, "model.bin"));
    expect((await trained.info()).version).toBe((await inProcess.info()).version);

    // The next iteration starts from the adapter it is given.
    const second = await trainer.train(pairs, SIMPO, { ...run, iteration: 2 }, first.adapterDir);
    expect(JSON.parse(readFileSync(join(dir, "exp/lostspace/iter-2/settings.json"), "utf8")).init_adapter).toBe(first.adapterDir);
    await inProcess.train(pairs, SIMPO);
    const again = await TinyBackend.load(join(second.adapterDir, "model.bin"));
    expect((await again.info()).version).toBe((await inProcess.info()).version);
    await Promise.all([inProcess, trained, again].map((b) => b.dispose()));
  });

  it("says what went wrong when the trainer fails or writes nothing", async () => {
    const failing = new CommandTrainer({ command: "echo 'CUDA out of memory' >&2; exit 3", workRoot: dir, baseModel: "m", log: { info() {} } });
    const e1 = await failing.train(pairs, SIMPO, { ...run, iteration: 5 }, null).catch((e) => e);
    expect(e1).toBeInstanceOf(CommandError);
    expect(e1.message).toMatch(/trainer command .* exited with code 3[\s\S]*CUDA out of memory/);
    const silent = new CommandTrainer({ command: "true", workRoot: dir, baseModel: "m" });
    await expect(silent.train(pairs, SIMPO, { ...run, iteration: 6 }, null)).rejects.toBeInstanceOf(TrainerOutputError);
  });

  it("packs an adapter directory into one archive named by its content, and unpacks it exactly", async () => {
    const src = join(dir, "adapter-src");
    mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "adapter_config.json"), '{"r": 16}');
    writeFileSync(join(src, "sub", "weights.bin"), Buffer.from([1, 2, 3, 250]));
    const bytes = await packDir(src);
    expect(adapterVersion(bytes)).toBe(adapterVersion(await packDir(src))); // deterministic
    const out = join(dir, "adapter-out");
    await unpackTo(bytes, out);
    expect(readFileSync(join(out, "adapter_config.json"), "utf8")).toBe('{"r": 16}');
    expect([...readFileSync(join(out, "sub", "weights.bin"))]).toEqual([1, 2, 3, 250]);
    await expect(unpackTo(new Uint8Array([1, 2, 3]), out)).rejects.toBeInstanceOf(AdapterArchiveError);
    // an entry that would escape the target directory is refused
    const header = Buffer.from(JSON.stringify({ files: [{ path: "../evil", bytes: 1 }] }));
    const head = Buffer.alloc(16);
    Buffer.from("POPADPT\0", "latin1").copy(head);
    head.writeUInt32LE(1, 8);
    head.writeUInt32LE(header.length, 12);
    await expect(unpackTo(Buffer.concat([head, header, Buffer.from([0])]), join(dir, "x"))).rejects.toThrow(/not a plain relative path/);
  });
});
