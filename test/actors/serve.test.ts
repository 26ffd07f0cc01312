/**
 * `pop serve`: a real tiny checkpoint behind the OpenAI-compatible server, spoken to over real
 * HTTP on loopback. The in-process TinyBackend of the same checkpoint is the reference.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CRITERIA } from "../../protocol/mod.ts";
import type { ModelBackend, PromptInput, ScoreDistributions } from "../../actors/backend/types.ts";
import { dataUrl } from "../../actors/images/codec.ts";
import { JUDGE_REMINDER, judgePrompt } from "../../actors/openai/rubric.ts";
import { MicroBatcher } from "../../actors/serve/batcher.ts";
import { canServe, startOpenAiServer, type OpenAiServer } from "../../actors/serve/openai-server.ts";
import { TinyBackend } from "../../actors/tiny/backend.ts";
import { tinyPlug } from "../../actors/tiny/plug.ts";
import { poolPrompt } from "../../actors/tiny/world.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHECKPOINT = fileURLToPath(new URL("../../actors/tiny/checkpoints/ocrdumb.bin", import.meta.url));
const MODEL = "ocrdumb";

// Response bodies are checked by the assertions, not by types.
type Json = any;

let backend: ModelBackend & ScoreDistributions;
let local: TinyBackend;
let server: OpenAiServer;

beforeAll(async () => {
  const opened = await tinyPlug.open({ weights: CHECKPOINT }, { peer: MODEL });
  if (!canServe(opened)) throw new Error("the tiny backend should report score distributions");
  backend = opened;
  local = await TinyBackend.load(CHECKPOINT);
  server = await startOpenAiServer({ backend, model: MODEL, port: 0 });
});

afterAll(async () => {
  await server?.close();
  await backend?.dispose();
  await local?.dispose();
});

const post = (body: unknown) =>
  fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });

/** A user turn as OpenAI clients send it: the prompt's images as PNG data URLs, then the text. */
const userTurn = (prompt: PromptInput, text: string = prompt.question) => ({
  role: "user",
  content: [...prompt.images.map((image) => ({ type: "image_url", image_url: { url: dataUrl(image) } })), { type: "text", text }],
});

async function completion(body: Json): Promise<Json> {
  const res = await post({ model: MODEL, ...body });
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json;
}

const ask = async (prompt: PromptInput, settings: Json): Promise<string[]> =>
  (await completion({ messages: [userTurn(prompt)], ...settings })).choices.map((c: Json) => c.message.content);

async function expectError(res: Response, status: number, type: string, message?: RegExp) {
  expect(res.status).toBe(status);
  const body: Json = await res.json();
  expect(body).toMatchObject({ object: "error", type, param: null, code: status });
  expect(typeof body.message).toBe("string");
  if (message) expect(body.message).toMatch(message);
}

describe("pop serve's OpenAI-compatible API", () => {
  it("lists the model as vLLM does", async () => {
    const res = await fetch(`${server.url}/v1/models`);
    expect(res.status).toBe(200);
    const body: Json = await res.json();
    expect(body).toMatchObject({ object: "list", data: [{ id: MODEL, object: "model", owned_by: "pop", root: MODEL, parent: null }] });
    expect(Number.isInteger(body.data[0].created)).toBe(true);
  });

  it("refuses bad requests in vLLM's error shape and keeps serving", async () => {
    const prompt = poolPrompt(7, 0);
    const good = { model: MODEL, messages: [userTurn(prompt)] };
    await expectError(await post({ ...good, model: "gpt-4o" }), 404, "NotFoundError", /gpt-4o/);
    await expectError(await post("{not json"), 400, "BadRequestError", /JSON/);
    await expectError(await post({ model: MODEL }), 400, "BadRequestError", /messages/);
    await expectError(await post({ ...good, messages: "hi" }), 400, "BadRequestError", /messages/);
    await expectError(await post({ ...good, messages: [{ role: "robot", content: "hi" }] }), 400, "BadRequestError", /role/);
    await expectError(await post({ ...good, n: 0 }), 400, "BadRequestError", /'n'/);
    await expectError(await post({ ...good, temperature: "hot" }), 400, "BadRequestError", /temperature/);
    await expectError(await post({ ...good, stream: true }), 400, "BadRequestError", /stream/);
    const remote = { role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }, { type: "text", text: prompt.question }] };
    await expectError(await post({ ...good, messages: [remote] }), 400, "BadRequestError", /data URL/);
    const notPng = { role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,aGVsbG8gd29ybGQ=" } }, { type: "text", text: "hi" }] };
    await expectError(await post({ ...good, messages: [notPng] }), 400, "BadRequestError", /PNG or JPEG/);
    const png = Buffer.from(dataUrl(prompt.images[0]!).split(",")[1]!, "base64");
    const withImage = (bytes: Buffer) => [{ role: "user", content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${bytes.toString("base64")}` } }, { type: "text", text: "hi" }] }];
    await expectError(await post({ ...good, messages: withImage(png.subarray(0, 60)) }), 400, "BadRequestError", /cannot decode png/);
    const huge = Buffer.from(png);
    huge.writeUInt32BE(10_000, 16);
    huge.writeUInt32BE(10_000, 20);
    await expectError(await post({ ...good, messages: withImage(huge) }), 400, "BadRequestError", /megapixels/);
    await expectError(await fetch(`${server.url}/v1/completions`, { method: "POST", body: "{}" }), 404, "NotFoundError");
    const wrongMethod = await fetch(`${server.url}/v1/chat/completions`);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    await expectError(wrongMethod, 405, "MethodNotAllowedError");
    // A body declared larger than 64 MiB is refused from its headers, before it is read.
    const tooLarge = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-length": String(65 * 1024 * 1024) } }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      });
      req.on("error", reject);
      req.write("{");
    });
    expect(tooLarge.status).toBe(413);
    expect(JSON.parse(tooLarge.body)).toMatchObject({ object: "error", code: 413 });
    expect((await ask(prompt, { seed: 1 })).length).toBe(1);
  });

  it("answers a question about an image with n seeded choices, the same each time", async () => {
    const prompt = poolPrompt(7, 1);
    const body = await completion({ messages: [userTurn(prompt)], n: 3, seed: 5 });
    expect(body).toMatchObject({ object: "chat.completion", model: MODEL });
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.choices).toHaveLength(3);
    body.choices.forEach((c: Json, i: number) => expect(c).toMatchObject({ index: i, message: { role: "assistant" }, logprobs: null, finish_reason: "stop" }));
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect(body.usage.prompt_tokens).toBe(prompt.question.split(" ").length);
    const again = await ask(prompt, { n: 3, seed: 5 });
    expect(again).toEqual(body.choices.map((c: Json) => c.message.content));
  });

  it("batches concurrent requests into fewer model calls without changing any request's answers", async () => {
    const requests = Array.from({ length: 20 }, (_, i) => ({ prompt: poolPrompt(7, 20 + i), settings: { n: 4, temperature: 1.5, seed: 100 + i } }));
    const alone: string[][] = [];
    for (const r of requests) alone.push(await ask(r.prompt, r.settings));
    const before = server.stats();
    const together = await Promise.all(requests.map((r) => ask(r.prompt, r.settings)));
    const after = server.stats();
    expect(together).toEqual(alone);
    expect(after.items - before.items).toBe(20);
    expect(after.backendCalls - before.backendCalls).toBeLessThan(20);
    expect(after.batches - before.batches).toBeLessThan(20);
    // Sampling at 1.5 on twenty scenes does vary: the equality above is not of constant strings.
    expect(new Set(alone.flat()).size).toBeGreaterThan(1);
  });

  it("answers greedily at temperature 0 as the model does in-process", async () => {
    for (let i = 0; i < 6; i++) {
      const prompt = poolPrompt(7, 40 + i);
      const [expected] = await local.generate([prompt], { k: 1, temperature: 0, seed: 0 });
      expect(await ask(prompt, { temperature: 0, max_tokens: 5 })).toEqual(expected);
    }
  });

  it("judges from the model's score distribution, with its raw log-probs", async () => {
    const cases = [0, 1].flatMap((i) => {
      const prompt = poolPrompt(7, 60 + i);
      return ["red", "two circles"].flatMap((answer) => CRITERIA.map((criterion, c) => ({ prompt, answer, criterion, c })));
    });
    const replies = await Promise.all(
      cases.map(({ prompt, answer, criterion }) =>
        completion({ messages: [userTurn(prompt, judgePrompt(prompt.question, answer, criterion))], max_tokens: 1, temperature: 0, logprobs: true, top_logprobs: 5 }),
      ),
    );
    for (const [k, { prompt, answer, criterion, c }] of cases.entries()) {
      const [dist] = await local.judgeDistributions([{ prompt, answer }]);
      const [verdict] = await local.judge([{ prompt, answer }]);
      const expected = dist![c]!;
      const choice = replies[k].choices[0];
      const entry = choice.logprobs.content[0];
      const top: { token: string; logprob: number; bytes: number[] }[] = entry.top_logprobs;
      expect(top.map((t) => t.token).sort()).toEqual(["1", "2", "3", "4", "5"]);
      for (let j = 1; j < top.length; j++) expect(top[j]!.logprob).toBeLessThanOrEqual(top[j - 1]!.logprob);
      const served = [1, 2, 3, 4, 5].map((d) => top.find((t) => t.token === String(d))!.logprob);
      served.forEach((lp, d) => expect(lp).toBeCloseTo(expected[d]!, 5));
      for (const t of top) expect(t.bytes).toEqual([t.token.charCodeAt(0)]);
      // temperature 0: the most likely digit, reported with its own log-prob
      expect(choice.message.content).toBe(top[0]!.token);
      expect(entry).toMatchObject({ token: top[0]!.token, logprob: top[0]!.logprob });
      // what a client computes from top_logprobs, at the tiny judge's temperature, is the tiny judge's score
      const w = served.map((lp) => Math.exp(lp / 0.25));
      const score = w.reduce((s, x, d) => s + (d + 1) * x, 0) / w.reduce((s, x) => s + x, 0);
      expect(score).toBeCloseTo((verdict as { likert: Record<string, number> }).likert[criterion]!, 4);
    }
  });

  it("answers a failing model with a 500 carrying its message, and keeps serving", async () => {
    const broken = await tinyPlug.open({ weights: CHECKPOINT }, { peer: MODEL });
    await broken.dispose();
    const other = await startOpenAiServer({ backend: broken as ModelBackend & ScoreDistributions, model: MODEL, port: 0 });
    try {
      const res = await fetch(`${other.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ messages: [userTurn(poolPrompt(7, 80))] }) });
      await expectError(res, 500, "InternalServerError", /model worker/);
      expect((await fetch(`${other.url}/v1/models`)).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it("fails only the bad item of a batch the model refuses", async () => {
    const batcher = new MicroBatcher(backend, { windowMs: 5, maxBatch: 64 });
    const good = [0, 1, 2].map((i) => ({ ...poolPrompt(7, 90 + i), id: `seed-${i}` }));
    const png = Buffer.from(dataUrl(good[0]!.images[0]!).split(",")[1]!, "base64");
    // Past the server's checks, as a caller of the batcher could send it: a PNG cut short.
    const bad = { ...good[0]!, id: "seed-9", images: [{ format: "png" as const, width: 32, height: 32, data: new Uint8Array(png.subarray(0, 60)) }] };
    const sampling = { k: 2, temperature: 1 };
    const alone = await Promise.all(good.map((p) => batcher.answers(p, sampling)));
    const before = batcher.stats();
    const mixed = await Promise.allSettled([...good, bad].map((p) => batcher.answers(p, sampling)));
    expect(batcher.stats().batches - before.batches).toBe(1);
    expect(mixed.slice(0, 3).map((r) => (r.status === "fulfilled" ? r.value : r.reason))).toEqual(alone);
    expect(mixed[3]).toMatchObject({ status: "rejected", reason: { message: expect.stringMatching(/cannot decode png/) } });
  });

  it("keeps a judge request one across a reminder turn, and samples seeded digits", async () => {
    const prompt = poolPrompt(7, 70);
    const text = judgePrompt(prompt.question, "blue", "correctness");
    const messages = [userTurn(prompt, text), { role: "assistant", content: "maybe" }, { role: "user", content: JUDGE_REMINDER }];
    const greedy = await completion({ messages, temperature: 0, max_tokens: 1 });
    const [dist] = await local.judgeDistributions([{ prompt, answer: "blue" }]);
    const row = dist![CRITERIA.indexOf("correctness")]!;
    expect(greedy.choices[0].message.content).toBe(String(row.indexOf(Math.max(...row)) + 1));
    const sampled = await completion({ messages, n: 16, temperature: 1, seed: 3, logprobs: true });
    const digits = sampled.choices.map((c: Json) => c.message.content);
    for (const d of digits) expect(["1", "2", "3", "4", "5"]).toContain(d);
    expect(sampled.choices[0].logprobs.content[0].top_logprobs).toEqual([]);
    expect((await completion({ messages, n: 16, temperature: 1, seed: 3 })).choices.map((c: Json) => c.message.content)).toEqual(digits);
  });
});

describe("the pop serve command", () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    // The process group: npx, tsx and node, whatever state the test left them in.
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });

  it("serves a shipped peer, prints where, and stops cleanly on SIGTERM", async () => {
    // tsx itself, as `npx tsx` resolves it: npx (npm exec) runs the bin through `sh -c` and dies on
    // SIGTERM without passing it on, so through npx the signal would never reach the server.
    const tsx = join(ROOT, "node_modules", ".bin", "tsx");
    child = spawn(tsx, ["deploy/cli.ts", "serve", "--peer", MODEL, "--port", "0"], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no 'serving' line in 30 s; stderr:\n${stderr}`)), 30_000);
      createInterface({ input: child!.stdout! }).on("line", (line) => {
        const m = /^serving (\S+) at (http:\/\/\S+)$/.exec(line);
        if (!m) return;
        clearTimeout(timer);
        expect(m[1]).toBe(MODEL);
        resolve(m[2]!);
      });
      void exited.then((code) => reject(new Error(`pop serve exited with ${code}; stderr:\n${stderr}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const models: Json = await (await fetch(`${url}/models`)).json();
    expect(models.data[0].id).toBe(MODEL);
    const t0 = performance.now();
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
