/**
 * The process backend (--backend process) against the minimal Python peer
 * (actors/process-peer/minimal_peer.py): the wire's handshake, answering, judging and training;
 * a peer that crashes, hangs, babbles or breaks the schema fails the request with a named,
 * retryable error and the next request is answered by a restarted peer; a stop leaves no
 * process behind. Then one short iteration of a panel where the Python peer sits beside tiny
 * members, over a real nats-server.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, describe, expect, it, vi } from "vitest";
import { canTrain, capabilitiesOf, type ModelBackend } from "../../actors/models/contract.ts";
import { ProcessBackend, type ProcessBackendOptions } from "../../actors/models/process/backend.ts";
import { PeerExitedError, PeerProtocolError, PeerReportedError, PeerTimeoutError } from "../../actors/models/process/errors.ts";
import { wirePrompt } from "../../actors/models/process/convert.ts";
import { poolItem, poolPrompts } from "../../actors/models/tiny/world.ts";
import { PUBLISHED_DIR } from "../../deploy/ops/schemas/generate.ts";
import { CRITERIA } from "../../protocol/mod.ts";
import { startPanel, TRAIN_ONE_EPOCH, VOTE_EVERY_PROMPT } from "../support/panel.ts";
import { removeScratch, scratchDir } from "../support/scratch.ts";

const MINIMAL = fileURLToPath(new URL("../../actors/process-peer/minimal_peer.py", import.meta.url));
const FAULTY = fileURLToPath(new URL("../fixtures/process-peers/faulty_peer.py", import.meta.url));
const dir = scratchDir("pop-process-");
afterAll(() => removeScratch(dir));

/** A log that keeps its lines, to find the peer's stderr and the supervisor's warnings in. */
function capturingLog() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: object, msg: string) => void lines.push({ level, fields: fields as Record<string, unknown>, msg });
  return {
    lines,
    info: at("info"),
    warn: at("warn"),
    pids: () => lines.filter((l) => l.msg === "the peer program is ready").map((l) => l.fields.programPid as number),
  };
}

const open = (command: string, log = capturingLog(), options: Partial<ProcessBackendOptions> = {}) =>
  ProcessBackend.open({ command, workDir: join(dir, "work"), backoffMs: 50, stopGraceMs: 500, ...options }, log);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const prompts = poolPrompts(7, 0, 8);
const sampling = { k: 2, temperature: 0.8, seed: 11 };

describe("the process backend with the minimal Python peer", () => {
  it("shakes hands, answers from the images and judges, with the peer's stderr in the log", async () => {
    const log = capturingLog();
    await using backend = disposable(await open(`python3 ${MINIMAL}`, log));
    expect(capabilitiesOf(backend).sort()).toEqual(["exportWeights", "importWeights", "train"]);
    expect(await backend.info()).toMatchObject({ kind: "process", version: "minimal-1" });
    await vi.waitFor(() => expect(log.lines.some((l) => l.fields.stream === "stderr" && l.msg === "minimal peer ready")).toBe(true));

    const answers = await backend.generate(prompts, sampling);
    expect(answers.map((a) => a.length)).toEqual(prompts.map(() => 2));
    // Deterministic for a seed, and read from the pixels: count questions get the world's answer.
    expect(await backend.generate(prompts, sampling)).toEqual(answers);
    const greedy = await backend.generate(prompts, { ...sampling, temperature: 0 });
    prompts.forEach((p, i) => {
      if (p.question.startsWith("how many")) expect(greedy[i]![0]).toBe(poolItem(7, i).answer);
    });
    expect(new Set(greedy.map((a) => a[0])).size).toBeGreaterThan(1);

    const judged = await backend.judge(prompts.map((prompt, i) => ({ prompt, answer: greedy[i]![0]! })));
    expect(judged).toHaveLength(prompts.length);
    for (const j of judged) {
      if (!("likert" in j)) throw new Error("the minimal peer does not abstain");
      for (const c of CRITERIA) expect(Number.isInteger(j.likert[c])).toBe(true);
      expect(j.likert.correctness).toBe(5); // its own greedy answer is right by its own reading
    }
    const wrong = await backend.judge([{ prompt: prompts[0]!, answer: "a very long answer that is surely not right" }]);
    expect("likert" in wrong[0]! && wrong[0].likert.correctness).toBe(1);
  });

  it("reads a distribution over 1..5 as its expected score", async () => {
    await using backend = disposable(await open(`python3 ${MINIMAL} --distribution`));
    const [j] = await backend.judge([{ prompt: prompts[0]!, answer: "nothing like it at all" }]);
    if (!j || !("likert" in j)) throw new Error("expected scores");
    // 0.8 on the score, 0.05 on each other: correctness 1 gives 0.8 + 0.05 * (2 + 3 + 4 + 5) = 1.5.
    expect(j.likert.correctness).toBeCloseTo(1.5, 9);
  });

  it("trains in a trainer-contract work directory, relays progress, and hands its adapter to a fresh peer", async () => {
    const log = capturingLog();
    await using backend = disposable(await open(`python3 ${MINIMAL}`, log));
    if (!canTrain(backend)) throw new Error("the minimal peer trains");
    const pairs = prompts.slice(0, 3).map((prompt) => ({ prompt, chosen: "purple", rejected: "seven" }));
    const progress: [number, number][] = [];
    const before = (await backend.info()).version;
    const result = await backend.train(
      pairs,
      { beta: 2, gamma: 0.5, learningRate: 1e-3, epochs: 1, batchSize: 2, seed: 1 },
      { experiment: "x", peer: "py", iteration: 1, onProgress: (d, t) => progress.push([d, t]) },
    );
    expect(result).toMatchObject({ steps: 3, pairs: 3 });
    expect(progress).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    expect((await backend.info()).version).not.toBe(before);
    const answers = await backend.generate(prompts.slice(0, 4), { ...sampling, temperature: 0 });
    expect(answers.slice(0, 3).map((a) => a[0])).toEqual(["purple", "purple", "purple"]);

    await using other = disposable(await open(`python3 ${MINIMAL}`));
    await other.importWeights!(await backend.exportWeights());
    expect(await other.generate(prompts.slice(0, 4), { ...sampling, temperature: 0 })).toEqual(answers);
  });

  it("a peer that crashes mid-request: the request fails retryable, the restarted peer answers the next, with its adapter", async () => {
    const log = capturingLog();
    const marker = join(dir, "crash.marker");
    await using backend = disposable(await open(`python3 ${FAULTY} crash ${marker}`, log));
    const pairs = [{ prompt: prompts[0]!, chosen: "purple", rejected: "seven" }];
    await backend.train!(
      pairs,
      { beta: 2, gamma: 0.5, learningRate: 1e-3, epochs: 1, batchSize: 2, seed: 1 },
      { experiment: "x", peer: "crash", iteration: 1 },
    );
    const error = await backend.generate(prompts, sampling).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerExitedError);
    expect((error as PeerExitedError).retryable).toBe(true);
    expect((error as Error).message).toContain("exited with code 3");
    expect((error as Error).message).toContain("crashing on purpose"); // its stderr tail
    expect(log.lines.some((l) => l.level === "warn" && l.msg.includes("PeerExitedError"))).toBe(true);
    const answers = await backend.generate(prompts.slice(0, 1), { ...sampling, temperature: 0 });
    expect(answers[0]![0]).toBe("purple"); // the restarted peer was given the trained adapter
    expect(log.pids()).toHaveLength(2);
    expect(log.lines.some((l) => l.msg === "restarting the peer program")).toBe(true);
  });

  it.each([
    ["malformed", PeerProtocolError, "not JSON"],
    ["schema", PeerProtocolError, "breaks the wire's schema"],
    ["hang", PeerTimeoutError, "did not answer answer request"],
  ] as const)("a peer whose reply is %s: a named retryable error, the peer restarted, the next request answered", async (mode, kind, text) => {
    const log = capturingLog();
    await using backend = disposable(await open(`python3 ${FAULTY} ${mode} ${join(dir, `${mode}.marker`)}`, log, { timeoutMs: 3_000 }));
    const error = await backend.generate(prompts, sampling).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(kind);
    expect((error as PeerProtocolError).retryable).toBe(true);
    expect((error as Error).message).toContain(text);
    expect(await backend.generate(prompts, sampling)).toHaveLength(prompts.length);
    const [first, second] = log.pids();
    expect(second).toBeDefined();
    expect(alive(first!)).toBe(false); // the failed run was stopped, not left behind
  });

  it("an error reply fails only its request, with the peer's retryable flag; the peer keeps running", async () => {
    const log = capturingLog();
    await using backend = disposable(await open(`python3 ${FAULTY} error ${join(dir, "error.marker")}`, log));
    const error = await backend.generate(prompts, sampling).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PeerReportedError);
    expect((error as PeerReportedError).retryable).toBe(true);
    expect(await backend.generate(prompts, sampling)).toHaveLength(prompts.length);
    expect(log.pids()).toHaveLength(1);
  });

  it("stops cleanly: stdin closed first; a peer that ignores it and SIGTERM is killed after the grace", async () => {
    const log = capturingLog();
    const polite = await open(`python3 ${MINIMAL}`, log);
    const [pid] = log.pids();
    await polite.dispose();
    expect(alive(pid!)).toBe(false);
    await vi.waitFor(() => expect(log.lines.some((l) => l.msg === "minimal peer: stdin closed, exiting")).toBe(true));

    const stubborn = `python3 -c 'import json, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(json.dumps({"type": "hello", "protocol": "pop-process/1", "name": "stubborn", "capabilities": ["answer", "judge"]}), flush=True)
time.sleep(3600)'`;
    const log2 = capturingLog();
    const backend = await open(stubborn, log2, { stopGraceMs: 300 });
    const [pid2] = log2.pids();
    const t0 = Date.now();
    await backend.dispose();
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(alive(pid2!)).toBe(false);
  });

  it("evaluates through the program when it declares evaluate", async () => {
    const command = `python3 -c 'import json, sys
print(json.dumps({"type": "hello", "protocol": "pop-process/1", "name": "bench", "capabilities": ["answer", "judge", "evaluate"]}), flush=True)
for line in sys.stdin:
    r = json.loads(line)
    p = r["params"]
    print(json.dumps({"type": "result", "id": r["id"], "result": {"suites": {"colour": 0.5, "it": p["iteration"] / 10}, "average": 0.35, "items": 4}}), flush=True)'`;
    await using backend = disposable(await open(command));
    expect(capabilitiesOf(backend)).toEqual(["evaluate"]);
    expect(await backend.evaluate!({ iteration: 2, modelVersion: "v" })).toMatchObject({ suites: { colour: 0.5, it: 0.2 }, average: 0.35, items: 4 });
  });

  it("refuses a peer without the required capabilities, as not retryable", async () => {
    const command = `python3 -c 'import json; print(json.dumps({"type": "hello", "protocol": "pop-process/1", "name": "mute", "capabilities": ["answer"]}), flush=True); input()'`;
    const error = await open(command).catch((e: unknown) => e);
    expect((error as Error).message).toContain("lacks the required capabilities judge");
    expect((error as PeerExitedError).retryable).toBe(false);
  });
});

describe("the minimal peer's wire, checked against the published JSON Schemas", () => {
  it("every request the actor writes and every line the peer writes validates", () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const schema = (name: string) => ajv.compile(JSON.parse(readFileSync(join(PUBLISHED_DIR, "process", `${name}.schema.json`), "utf8")));
    const [request, message, answer, judge] = ["process-request", "process-message", "process-result-answer", "process-result-judge"].map(schema);
    const cache = new Map();
    const wire = prompts.slice(0, 2).map((p) => wirePrompt(p, cache));
    const requests = [
      { id: 1, method: "answer", params: { prompts: wire, k: 2, temperature: 0.5, seed: 3 } },
      { id: 2, method: "judge", params: { items: wire.map((prompt) => ({ prompt, answer: "red" })) } },
    ];
    for (const r of requests) expect(request!(r), JSON.stringify(request!.errors)).toBe(true);
    for (const flag of ["", "--distribution"]) {
      const run = spawnSync("python3", [MINIMAL, ...(flag ? [flag] : [])], {
        input: requests.map((r) => JSON.stringify(r)).join("\n") + "\n",
        encoding: "utf8",
      });
      expect(run.status, run.stderr).toBe(0);
      const lines = run.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.type)).toEqual(["hello", "result", "result"]);
      for (const l of lines) expect(message!(l), JSON.stringify(message!.errors)).toBe(true);
      expect(answer!(lines[1].result), JSON.stringify(answer!.errors)).toBe(true);
      expect(judge!(lines[2].result), JSON.stringify(judge!.errors)).toBe(true);
    }
  });
});

describe("a process-backed peer in a panel", () => {
  it("answers and judges beside tiny members for an iteration; its candidates and verdicts are stored", async () => {
    await using panel = await startPanel(
      { experiment: "procpeer", iterations: 1, promptsPerIteration: 4, k: 2, temperature: 1, poolSeed: 23, minPeers: 3 },
      { voting: VOTE_EVERY_PROMPT, training: TRAIN_ONE_EPOCH },
      { benchItems: 5 },
    );
    const ckpt = await panel.randomCheckpoints(["ann", "ben"]);
    panel.startActor("ann", ckpt.ann!);
    panel.startActor("ben", ckpt.ben!);
    const py = panel.spawn("py", [
      "actor",
      "--peer",
      "py",
      "--backend",
      "process",
      "--cmd",
      `python3 ${MINIMAL}`,
      "--work-dir",
      join(panel.dir, "work"),
      ...panel.network.flags(),
      "--experiment",
      panel.config.experiment,
    ]);
    panel.startCoordinator();
    await panel.waitFor("the iteration to finish", async () => (await panel.control()).some((e) => e.event === "experiment_done"), 240_000);
    const cands = (await panel.stored("cand", "candidates")).filter((c) => c.author === "py");
    expect(new Set(cands.map((c) => c.promptId)).size, panel.logTails()).toBe(4);
    const verdicts = (await panel.stored("verdict", "verdict")).filter((v) => v.judge === "py");
    expect(verdicts.length).toBeGreaterThan(0);
    expect(verdicts.every((v) => v.scores.every((s) => s.likert))).toBe(true);
    // It trained on the iteration's pairs through the trainer contract's work directory.
    const done = (await panel.control()).find((e) => e.event === "training_done" && e.peer === "py");
    expect(done, panel.logTails()).toBeDefined();
    expect(existsSync(join(panel.dir, "work", "procpeer", "py", "iter-1", "metrics.json"))).toBe(true);
    const log = readFileSync(py.logFile, "utf8");
    expect(log).toContain("minimal peer ready");
    // SIGTERM to the actor ends its program too: stdin closed, the program exits, no orphan.
    const pid = Number(/the peer program is ready.*?programPid=(\d+)/.exec(log)?.[1]);
    expect(pid, log.slice(-2000)).toBeGreaterThan(0);
    py.child.kill("SIGTERM");
    expect(await py.exited).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(readFileSync(py.logFile, "utf8")).toContain("minimal peer: stdin closed, exiting");
  }, 300_000);
});

/** `await using` for a backend. */
function disposable<B extends ModelBackend>(backend: B): B & AsyncDisposable {
  return Object.assign(backend, { [Symbol.asyncDispose]: () => backend.dispose() });
}
