import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import jpeg from "jpeg-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Answerer, PromptInput } from "../../actors/models/contract.ts";
import { BenchmarkFileError, BenchmarkFileEvaluator } from "../../actors/evaluation/benchmark-file.ts";
import { CommandEvaluator, EvalCommandError, parseScores, ScoresFileError } from "../../actors/evaluation/command.ts";
import { CHOICE_INSTRUCTION, choiceMatch, choicePrompt, exactMatch, normaliseAnswer, readChoice } from "../../actors/evaluation/scoring.ts";
import { encodePng } from "../../actors/images/png-encode.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { writeTinyBenchmark } from "../../actors/models/tiny/bench-export.ts";
import { benchmarkSuites, COLORS, FAMILIES, renderScene } from "../../actors/models/tiny/world.ts";

const dir = mkdtempSync(join(tmpdir(), "pop-evaluation-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const writeJsonl = (path: string, rows: unknown[]) => writeFileSync(path, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");

/** Alive and not a zombie (an orphan may wait for a reaper that a container lacks). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0] !== "Z";
  } catch {
    return false;
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting");
    await sleep(20);
  }
}

describe("scoring", () => {
  it("normalises case, whitespace, surrounding quotes and trailing punctuation", () => {
    expect(normaliseAnswer('  "Paris."  ')).toBe("paris");
    expect(normaliseAnswer("STOP  sign!")).toBe("stop sign");
    expect(normaliseAnswer("'a h t'")).toBe("a h t");
    expect(normaliseAnswer("\u201cyes.\u201d")).toBe("yes");
    expect(normaliseAnswer("3.5")).toBe("3.5");
    expect(normaliseAnswer("red ?")).toBe("red ?");
    expect(exactMatch("Red.", "red")).toBe(true);
    expect(exactMatch("a  h\tt", "a h t")).toBe(true);
    expect(exactMatch("reddish", "red")).toBe(false);
    expect(exactMatch("", "red")).toBe(false);
  });

  it("formats the multiple-choice prompt the LLaVA way", () => {
    expect(choicePrompt("Which colour? ", ["red", " blue"])).toBe(`Which colour?\nA. red\nB. blue\n${CHOICE_INSTRUCTION}`);
    expect(CHOICE_INSTRUCTION).toBe("Answer with the option's letter from the given choices directly.");
  });

  it("reads the option letter in its usual forms", () => {
    const c = ["cat", "dog", "bird", "fish"];
    for (const reply of [
      "B",
      "b",
      "B.",
      "(B)",
      "B)",
      "B:",
      " B. dog",
      "(B) dog, clearly",
      "[B]",
      "Answer: B",
      "answer: (B)",
      "The answer is B",
      "The answer is B.",
      "I think the answer is (B), a dog",
      "Dog",
      "dog.",
    ]) {
      expect(readChoice(reply, c), reply).toBe(1);
    }
    expect(readChoice("D", c)).toBe(3);
    expect(readChoice("A", c)).toBe(0);
  });

  it("reads wrong, out-of-range and garbage replies as no option", () => {
    const c = ["cat", "dog", "bird", "fish"];
    for (const reply of ["", "E", "(Z)", "AB", "A dog is in the picture", "Bird or dog", "I cannot tell", "the answer is unclear", "42", "dogs"]) {
      expect(readChoice(reply, c), reply).toBeUndefined();
    }
    expect(choiceMatch("C", c, 1)).toBe(false);
    expect(choiceMatch("B", c, 1)).toBe(true);
  });

  it("prefers the letter over an option text that looks like a letter", () => {
    expect(readChoice("B", ["B", "A"])).toBe(1);
  });
});

describe("BenchmarkFileEvaluator", () => {
  let backend: TinyBackend;
  beforeAll(async () => {
    backend = await TinyBackend.load("actors/models/tiny/checkpoints/ocrdumb.bin", { benchItems: 20 });
  });
  afterAll(async () => backend?.dispose());

  it("gives exactly the tiny model's own benchmark accuracies on the same items as PNG files", async () => {
    const file = writeTinyBenchmark(join(dir, "tiny"), 20);
    const progress: number[] = [];
    const ev = await BenchmarkFileEvaluator.open(backend, file, { onProgress: (done) => progress.push(done) });
    expect(ev.items[0]!.prompt.images[0]).toMatchObject({ format: "png", width: 32, height: 32 });

    const fromFile = await ev.evaluate();
    const own = await backend.evaluate();
    expect(fromFile.items).toBe(120);
    expect(own.items).toBe(120);
    expect(fromFile.suites).toEqual(own.suites);
    expect(fromFile.average).toBeCloseTo(own.average, 12);
    // the checkpoint is not trivially right or wrong everywhere, so equality says something
    expect(new Set(Object.values(own.suites)).size).toBeGreaterThan(1);
    expect(progress).toEqual([0, 32, 64, 96, 120]);
  });

  it("scores multiple-choice items from the real model's replies", async () => {
    const mc = join(dir, "mc");
    mkdirSync(mc, { recursive: true });
    const items = benchmarkSuites(20).colour.slice(0, 8);
    const rows = items.map((it, i) => {
      const img = renderScene(it.scene);
      writeFileSync(join(mc, `${i}.png`), encodePng(img.width, img.height, img.data));
      // letter answers and index answers both
      const index = COLORS.indexOf(it.answer as (typeof COLORS)[number]);
      return { image: `${i}.png`, question: it.question, suite: "colour-mc", choices: [...COLORS], answer: i % 2 ? String.fromCharCode(65 + index) : index };
    });
    writeJsonl(join(mc, "mc.jsonl"), rows);
    const ev = await BenchmarkFileEvaluator.open(backend, join(mc, "mc.jsonl"), { batchSize: 3 });
    expect(ev.items[0]!.prompt.question).toBe(choicePrompt(items[0]!.question, [...COLORS]));
    expect(ev.items[0]!.prompt.id).toBe("mc.jsonl:1");

    const prompts = ev.items.map((it) => it.prompt);
    const replies = await backend.generate(prompts, { k: 1, temperature: 0, seed: 0 });
    const expected =
      ev.items.filter((it, i) => "choices" in it.expect && choiceMatch(replies[i]![0]!, it.expect.choices, it.expect.index)).length / items.length;
    const res = await ev.evaluate();
    expect(res.suites).toEqual({ "colour-mc": expected });
    expect(res.items).toBe(8);
  });

  it("scores scripted multiple-choice and exact replies, per suite, unweighted", async () => {
    const d = join(dir, "scripted");
    mkdirSync(d, { recursive: true });
    writeJsonl(join(d, "s.jsonl"), [
      { question: "q1", suite: "mc", choices: ["x", "y", "z"], answer: "B" },
      { question: "q2", suite: "mc", choices: ["x", "y", "z"], answer: 2 },
      { question: "q3", suite: "mc", choices: ["x", "y", "z"], answer: "a" },
      { question: "q4", suite: "mc", choices: ["x", "y", "z"], answer: "C" },
      { question: "q5", answer: "Stop." },
      { images: [], question: "q6", answer: "go" },
    ]);
    const replies: Record<string, string> = { q1: "(B)", q2: "The answer is C.", q3: "a", q4: "I am not sure", q5: '"stop"', q6: "went" };
    const seen: PromptInput[] = [];
    const scripted: Answerer = {
      async generate(prompts, options) {
        expect(options).toMatchObject({ k: 1, temperature: 0, seed: 0, maxTokens: 7 });
        seen.push(...prompts);
        return prompts.map((p) => [replies[p.question.split("\n")[0]!]!]);
      },
    };
    const res = await (await BenchmarkFileEvaluator.open(scripted, join(d, "s.jsonl"), { maxTokens: 7 })).evaluate();
    expect(res.suites).toEqual({ mc: 0.75, default: 0.5 });
    expect(res.average).toBeCloseTo(0.625);
    expect(res.items).toBe(6);
    expect(seen[0]!.question).toBe(`q1\nA. x\nB. y\nC. z\n${CHOICE_INSTRUCTION}`);
    expect(seen[4]!.question).toBe("q5");

    const limited = await BenchmarkFileEvaluator.open(scripted, join(d, "s.jsonl"), { limit: 2, maxTokens: 7 });
    expect((await limited.evaluate()).suites).toEqual({ mc: 1 });
  });

  it("reads each image once, as the bytes on disk, PNG and JPEG alike", async () => {
    const d = join(dir, "formats");
    mkdirSync(d, { recursive: true });
    const rgba = Buffer.alloc(5 * 3 * 4, 200);
    const jpg = jpeg.encode({ data: rgba, width: 5, height: 3 }, 90).data;
    writeFileSync(join(d, "p.jpg"), jpg);
    writeFileSync(join(d, "q.png"), encodePng(2, 4, new Uint8Array(2 * 4 * 3)));
    writeJsonl(join(d, "f.jsonl"), [
      { image: "p.jpg", question: "a", answer: "x" },
      { images: ["p.jpg", resolve(d, "q.png")], question: "b", answer: "y", extra: "ignored" },
    ]);
    const ev = await BenchmarkFileEvaluator.open({ generate: async (p) => p.map(() => [""]) }, join(d, "f.jsonl"));
    const [a, b] = ev.items;
    expect(a!.prompt.images[0]).toMatchObject({ format: "jpeg", width: 5, height: 3 });
    expect(Buffer.from(a!.prompt.images[0]!.data).equals(jpg)).toBe(true);
    expect(b!.prompt.images[0]).toBe(a!.prompt.images[0]);
    expect(b!.prompt.images[1]).toMatchObject({ format: "png", width: 2, height: 4 });
  });

  it("reports every bad line as FILE:LINE", async () => {
    const d = join(dir, "bad");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "ok.png"), encodePng(1, 1, new Uint8Array(3)));
    writeFileSync(join(d, "fake.png"), "not an image at all");
    const file = join(d, "bad.jsonl");
    writeJsonl(file, [
      { image: "ok.png", question: "fine", answer: "x" },
      "{not json",
      { image: "ok.png", answer: "x" },
      "",
      { image: "missing.png", question: "q", answer: "x" },
      { image: "fake.png", question: "q", answer: "x" },
      { image: "ok.png", question: "q", choices: ["a", "b"], answer: "C" },
      { image: "ok.png", images: ["ok.png"], question: "q", answer: "x" },
      { question: "q" },
      [1, 2],
      { question: "q", choices: ["only one"], answer: 0 },
    ]);
    const err = await BenchmarkFileEvaluator.open(backend, file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BenchmarkFileError);
    const problems = (err as BenchmarkFileError).problems;
    const lines = problems.map((p) => Number(/^.*bad\.jsonl:(\d+):/.exec(p)?.[1]));
    expect(lines).toEqual([2, 3, 5, 6, 7, 8, 9, 10, 11]);
    expect(problems[1]).toContain('"question"');
    expect(problems[2]).toMatch(/image "missing.png" not found/);
    expect(problems[3]).toMatch(/"fake.png" is not a usable PNG or JPEG/);
    expect(problems[4]).toMatch(/option letter A..B or an index 0..1, got "C"/);
    expect((err as Error).message).toContain(`${file}:5`);

    writeFileSync(join(d, "empty.jsonl"), "\n\n");
    await expect(BenchmarkFileEvaluator.open(backend, join(d, "empty.jsonl"))).rejects.toThrow(/no items/);
    await expect(BenchmarkFileEvaluator.open(backend, join(d, "absent.jsonl"))).rejects.toThrow(BenchmarkFileError);
  });
});

describe("CommandEvaluator", () => {
  const quiet = { info: () => {} };

  it("reads suites from $POP_SCORES, percentages as fractions, with the extra env", async () => {
    const lines: string[] = [];
    const ev = new CommandEvaluator(
      `echo "evaluating $POP_PEER"; echo warming up >&2; printf '{"suites":{"a":0.5,"b":75,"c":%s}}' "$POP_ITERATION" > "$POP_SCORES"`,
      {
        env: { POP_PEER: "alice", POP_ITERATION: "1" },
        log: { info: (_f, msg) => lines.push(msg) },
      },
    );
    const res = await ev.evaluate();
    expect(res.suites).toEqual({ a: 0.5, b: 0.75, c: 1 });
    expect(res.average).toBeCloseTo(0.75);
    expect(lines).toEqual(expect.arrayContaining(["evaluating alice", "warming up"]));
  });

  it("reads a flat object and a kept outFile, never a stale one", async () => {
    const out = join(dir, "scores", "out.json");
    const ev = new CommandEvaluator(`echo '{"mmbench": 61.5, "pope": 0.8}' > "$POP_SCORES"`, { outFile: out, log: quiet });
    expect((await ev.evaluate()).suites).toEqual({ mmbench: 0.615, pope: 0.8 });
    expect(existsSync(out)).toBe(true);
    const lazy = new CommandEvaluator("true", { outFile: out, log: quiet });
    await expect(lazy.evaluate()).rejects.toThrow(/did not write its scores to \$POP_SCORES/);
  });

  it("fails with the stderr tail when the command exits non-zero", async () => {
    const ev = new CommandEvaluator(`for i in $(seq 1 30); do echo "line $i" >&2; done; echo "CUDA out of memory" >&2; exit 3`, { log: quiet });
    const err = (await ev.evaluate().catch((e: unknown) => e)) as EvalCommandError;
    expect(err).toBeInstanceOf(EvalCommandError);
    expect(err.message).toMatch(/exited with code 3/);
    expect(err.message).toContain("CUDA out of memory");
    expect(err.stderrTail).toHaveLength(20);
    expect(err.message).not.toContain("line 11\n");
  });

  it("says what a garbage scores file held", async () => {
    const garbage = new CommandEvaluator(`echo 'accuracy: great' > "$POP_SCORES"`, { log: quiet });
    await expect(garbage.evaluate()).rejects.toThrow(/not valid JSON.*it held "accuracy: great\\n"/s);
    await expect(garbage.evaluate()).rejects.toBeInstanceOf(ScoresFileError);
    expect(() => parseScores('{"suites":{"a":"0.5"}}', "f")).toThrow(/"a" is "0.5", not a number/);
    expect(() => parseScores('{"a":-0.1,"b":101}', "f")).toThrow(/"a" is -0.1, outside.*"b" is 101, outside/);
    expect(() => parseScores("{}", "f")).toThrow(/no suite scores/);
    expect(() => parseScores('{"suites":{}}', "f")).toThrow(/no suite scores/);
    expect(() => parseScores("[0.5]", "f")).toThrow(/JSON object/);
    expect(() => parseScores('{"suites":[1]}', "f")).toThrow(/"suites" must be an object/);
    expect(parseScores('{"suites":{"a":1,"b":0,"c":100},"items":500}', "f")).toEqual({ suites: { a: 1, b: 0, c: 1 }, items: 500 });
  });

  it("kills the whole process group on timeout", async () => {
    const pidFile = join(dir, "timeout.pid");
    const ev = new CommandEvaluator(`sleep 60 & echo $! > "${pidFile}"; wait`, { timeoutMs: 500, log: quiet });
    const t0 = Date.now();
    await expect(ev.evaluate()).rejects.toThrow(/ran past its timeout of 500 ms/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await waitFor(() => !alive(Number(readFileSync(pidFile, "utf8"))), 3_000);
  });

  it("escalates to SIGKILL when the command ignores SIGTERM", async () => {
    const pidFile = join(dir, "stubborn.pid");
    const ev = new CommandEvaluator(`trap '' TERM; sleep 60 & echo $! > "${pidFile}"; wait`, { timeoutMs: 300, log: quiet });
    await expect(ev.evaluate()).rejects.toThrow(/timeout/);
    await waitFor(() => !alive(Number(readFileSync(pidFile, "utf8"))), 10_000);
  });

  it("kills the command when this process is told to stop", async () => {
    const pidFile = join(dir, "stop.pid");
    // .mts: the temp folder has no package.json saying "module", and the script awaits at top level
    const script = join(dir, "stop-script.mts");
    const mod = resolve("actors/evaluation/command.ts");
    writeFileSync(
      script,
      `import { CommandEvaluator } from ${JSON.stringify(mod)};\nawait new CommandEvaluator(${JSON.stringify(`sleep 60 & echo $! > "${pidFile}"; wait`)}, { log: { info() {} } }).evaluate();\n`,
    );
    const node = spawn(process.execPath, ["--import", "tsx", script], { stdio: "ignore" });
    const exited = new Promise<NodeJS.Signals | null>((r) => node.once("exit", (_code, signal) => r(signal)));
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() !== "", 20_000);
    const sleeper = Number(readFileSync(pidFile, "utf8"));
    expect(alive(sleeper)).toBe(true);
    node.kill("SIGTERM");
    // with no other handler, node still ends by the signal, as it would by default
    expect(await exited).toBe("SIGTERM");
    await waitFor(() => !alive(sleeper), 3_000);
  });
});
