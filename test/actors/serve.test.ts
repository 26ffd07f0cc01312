/**
 * `pop serve`: a real tiny checkpoint behind the OpenAI-compatible server, spoken to over real
 * HTTP on loopback. The in-process TinyBackend of the same checkpoint is the reference.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { CRITERIA } from "../../protocol/mod.ts";
import type { ModelBackend, PromptInput, ScoreDistributions } from "../../actors/models/contract.ts";
import { dataUrl } from "../../actors/images/codec.ts";
import { JUDGE_REMINDER, judgeAllPrompt, judgePrompt } from "../../actors/models/openai/rubric.ts";
import { MicroBatcher } from "../../actors/serve/batcher.ts";
import { canServe, startOpenAiServer, type OpenAiServer, type ServableBackend } from "../../actors/serve/openai-server.ts";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { tinyPlug } from "../../actors/models/tiny/plug.ts";
import { poolPrompt } from "../../actors/models/tiny/world.ts";
import { openTinyAdapter } from "../../deploy/cli/commands/serve.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHECKPOINT = fileURLToPath(new URL("../../actors/models/tiny/checkpoints/ocrdumb.bin", import.meta.url));
const MODEL = "ocrdumb";
/** Another shipped checkpoint stands in for a trained adapter of the base: different weights are what matter. */
const ADAPTER_CHECKPOINT = fileURLToPath(new URL("../../actors/models/tiny/checkpoints/lostspace.bin", import.meta.url));

// Response bodies are checked by the assertions, not by types.
type Json = any;

let backend: ModelBackend & ScoreDistributions;
let local: TinyBackend;
let server: OpenAiServer;
/** Every adapter backend the servers opened, to check they are disposed. */
const openedAdapters: ServableBackend[] = [];
/** While set, adapters' model calls wait for it: their work stays at the model and queued behind it. */
let gate: Promise<void> | undefined;
/** The real wiring of `pop serve`, with the adapters' model calls behind {@link gate}. */
const openAdapter = async (path: string): Promise<ServableBackend> => {
  const opened = await openTinyAdapter(path, { peer: MODEL }, { root: tmpdir(), maxBytes: 64 << 20 });
  openedAdapters.push(opened);
  return {
    info: () => opened.info(),
    dispose: () => opened.dispose(),
    judge: (items) => opened.judge(items),
    generate: async (prompts, options) => (await gate, opened.generate(prompts, options)),
    judgeDistributions: async (items) => (await gate, opened.judgeDistributions(items)),
  };
};

beforeAll(async () => {
  const opened = await tinyPlug.open({ weights: CHECKPOINT }, { peer: MODEL });
  if (!canServe(opened)) throw new Error("the tiny backend should report score distributions");
  backend = opened;
  local = await TinyBackend.load(CHECKPOINT);
  server = await startOpenAiServer({ backend, model: MODEL, port: 0, openAdapter });
});

afterAll(async () => {
  await server?.close();
  await backend?.dispose();
  await local?.dispose();
});

const post = (body: unknown) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

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

/** An error answer in OpenAI's (and current vLLM's) shape: everything under `error`, `param` the field at fault. */
async function expectError(res: Response, status: number, type: string, message?: RegExp, param?: string) {
  expect(res.status).toBe(status);
  const body: Json = await res.json();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toMatchObject({ type, code: status });
  expect("param" in body.error).toBe(true);
  if (param !== undefined) expect(body.error.param).toBe(param);
  expect(typeof body.error.message).toBe("string");
  if (message) expect(body.error.message).toMatch(message);
}

describe("pop serve's OpenAI-compatible API", () => {
  it("lists the model as vLLM does", async () => {
    const res = await fetch(`${server.url}/v1/models`);
    expect(res.status).toBe(200);
    const body: Json = await res.json();
    expect(body).toMatchObject({ object: "list", data: [{ id: MODEL, object: "model", owned_by: "pop", root: MODEL, parent: null }] });
    expect(Number.isInteger(body.data[0].created)).toBe(true);
  });

  it("refuses bad requests in OpenAI's error shape, naming the field, and keeps serving", async () => {
    const prompt = poolPrompt(7, 0);
    const good = { model: MODEL, messages: [userTurn(prompt)] };
    await expectError(await post({ ...good, model: "gpt-4o" }), 404, "NotFoundError", /gpt-4o/, "model");
    await expectError(await post("{not json"), 400, "BadRequestError", /JSON/);
    await expectError(await post({ model: MODEL }), 400, "BadRequestError", /messages/);
    await expectError(await post({ ...good, messages: "hi" }), 400, "BadRequestError", /messages/);
    await expectError(await post({ ...good, messages: [{ role: "robot", content: "hi" }] }), 400, "BadRequestError", /role/);
    await expectError(await post({ ...good, n: 0 }), 400, "BadRequestError", /'n'/, "n");
    await expectError(await post({ ...good, temperature: "hot" }), 400, "BadRequestError", /temperature/, "temperature");
    await expectError(await post({ ...good, stream_options: { include_usage: true } }), 400, "BadRequestError", /stream/, "stream_options");
    await expectError(await post({ ...good, presence_penalty: 0.5 }), 400, "BadRequestError", /presence_penalty/, "presence_penalty");
    const remote = {
      role: "user",
      content: [
        { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
        { type: "text", text: prompt.question },
      ],
    };
    await expectError(await post({ ...good, messages: [remote] }), 400, "BadRequestError", /data URL/);
    const notPng = {
      role: "user",
      content: [
        { type: "image_url", image_url: { url: "data:image/png;base64,aGVsbG8gd29ybGQ=" } },
        { type: "text", text: "hi" },
      ],
    };
    await expectError(await post({ ...good, messages: [notPng] }), 400, "BadRequestError", /PNG or JPEG/);
    const png = Buffer.from(dataUrl(prompt.images[0]!).split(",")[1]!, "base64");
    const withImage = (bytes: Buffer) => [
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: `data:image/png;base64,${bytes.toString("base64")}` } },
          { type: "text", text: "hi" },
        ],
      },
    ];
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
    expect(JSON.parse(tooLarge.body)).toMatchObject({ error: { code: 413 } });
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
        completion({
          messages: [userTurn(prompt, judgePrompt(prompt.question, answer, criterion))],
          max_tokens: 1,
          temperature: 0,
          logprobs: true,
          top_logprobs: 5,
        }),
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

  it("answers the all-criteria rubric with a line per criterion, each digit with the model's log-probs, cut at max_tokens", async () => {
    const prompt = poolPrompt(7, 80);
    const answer = "two circles";
    const [dist] = await local.judgeDistributions([{ prompt, answer }]);
    const body = { messages: [userTurn(prompt, judgeAllPrompt(prompt.question, answer))], temperature: 0, logprobs: true, top_logprobs: 5 };
    const reply = await completion({ ...body, max_tokens: 64 });
    const choice = reply.choices[0];
    const best = (c: number) => String(dist![c]!.indexOf(Math.max(...dist![c]!)) + 1);
    expect(choice.message.content).toBe(CRITERIA.map((c, i) => `${c}: ${best(i)}`).join("\n"));
    expect(choice.finish_reason).toBe("stop");
    const tokens: { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[] = choice.logprobs.content;
    expect(tokens.map((t) => t.token).join("")).toBe(choice.message.content);
    const digits = tokens.filter((t) => /^[1-5]$/.test(t.token));
    expect(digits).toHaveLength(CRITERIA.length);
    for (const [c, t] of digits.entries()) {
      expect(t.top_logprobs.map((x) => x.token).sort()).toEqual(["1", "2", "3", "4", "5"]);
      for (const x of t.top_logprobs) expect(x.logprob).toBeCloseTo(dist![c]![Number(x.token) - 1]!, 5);
    }
    // The other tokens are certain.
    for (const t of tokens.filter((t) => !digits.includes(t))) expect(t).toMatchObject({ logprob: 0, top_logprobs: [{ token: t.token, logprob: 0 }] });
    // A short max_tokens cuts the reply, as a real server does: the last criteria are missing.
    const cut = (await completion({ ...body, max_tokens: 9 })).choices[0];
    expect(cut.finish_reason).toBe("length");
    expect(cut.logprobs.content).toHaveLength(9);
    expect(cut.message.content).toBe(`${CRITERIA[0]}: ${best(0)}\n${CRITERIA[1]}: ${best(1)}`);
  });
});

describe("runtime LoRA adapters, through vLLM's endpoints", () => {
  const ADAPTER = "ocrdumb-it1";
  let tmp: string;
  let adapterDir: string;
  let localAdapter: TinyBackend;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "pop-serve-lora-"));
    // What the tiny trainer writes: the trained checkpoint as model.bin in the iteration's directory.
    adapterDir = join(tmp, "adapter");
    await mkdir(adapterDir);
    await copyFile(ADAPTER_CHECKPOINT, join(adapterDir, "model.bin"));
    localAdapter = await TinyBackend.load(ADAPTER_CHECKPOINT);
  });
  afterAll(async () => {
    await localAdapter?.dispose();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const lora = (action: "load" | "unload", body: unknown, on: OpenAiServer = server) =>
    fetch(`${on.url}/v1/${action}_lora_adapter`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const models = async (): Promise<Json[]> => ((await (await fetch(`${server.url}/v1/models`)).json()) as Json).data;
  const greedy = { temperature: 0, max_tokens: 5 };

  it("loads an adapter once, lists it under the base, and answers and judges with its weights", async () => {
    // Two loads of one name at once: the second waits for the first and finds the name taken.
    const [first, second] = await Promise.all([
      lora("load", { lora_name: ADAPTER, lora_path: adapterDir }),
      lora("load", { lora_name: ADAPTER, lora_path: adapterDir }),
    ]);
    const [ok, refused] = first.status === 200 ? [first, second] : [second, first];
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await ok.text()).toBe(`Success: LoRA adapter '${ADAPTER}' added successfully.`);
    await expectError(refused, 400, "InvalidUserInput", new RegExp(`^The lora adapter '${ADAPTER}' has already been loaded\\.`));
    expect(openedAdapters).toHaveLength(1);

    const listed = await models();
    expect(listed).toHaveLength(2);
    expect(listed[0]).toMatchObject({ id: MODEL, root: MODEL, parent: null });
    expect(listed[1]).toMatchObject({ id: ADAPTER, object: "model", owned_by: "pop", root: adapterDir, parent: MODEL });
    expect(Number.isInteger(listed[1].created)).toBe(true);

    let differs = 0;
    for (let i = 0; i < 6; i++) {
      const prompt = poolPrompt(7, 100 + i);
      const [[[mine]], [[base]]] = await Promise.all([
        localAdapter.generate([prompt], { k: 1, temperature: 0, seed: 0 }),
        local.generate([prompt], { k: 1, temperature: 0, seed: 0 }),
      ]);
      const [viaAdapter, viaBase] = await Promise.all([completion({ model: ADAPTER, messages: [userTurn(prompt)], ...greedy }), ask(prompt, greedy)]);
      expect(viaAdapter.model).toBe(ADAPTER);
      expect(viaAdapter.choices.map((c: Json) => c.message.content)).toEqual([mine]);
      expect(viaBase).toEqual([base]);
      if (mine !== base) differs++;
    }
    expect(differs).toBeGreaterThan(0);

    const prompt = poolPrompt(7, 110);
    const judged = await completion({
      model: ADAPTER,
      messages: [userTurn(prompt, judgePrompt(prompt.question, "red", "correctness"))],
      max_tokens: 1,
      temperature: 0,
      logprobs: true,
      top_logprobs: 5,
    });
    const row = async (b: TinyBackend) => (await b.judgeDistributions([{ prompt, answer: "red" }]))[0]![CRITERIA.indexOf("correctness")]!;
    const [mine, base] = [await row(localAdapter), await row(local)];
    const top: Json[] = judged.choices[0].logprobs.content[0].top_logprobs;
    const served = [1, 2, 3, 4, 5].map((d) => top.find((t) => t.token === String(d))!.logprob as number);
    served.forEach((lp, d) => expect(lp).toBeCloseTo(mine![d]!, 5));
    expect(served.some((lp, d) => Math.abs(lp - base![d]!) > 1e-3)).toBe(true);

    const stats = server.stats();
    expect(stats.models[ADAPTER]!.requests).toBe(7);
    expect(stats.models[ADAPTER]!.items).toBe(7);
    expect(stats.models[MODEL]!.requests).toBeGreaterThan(0);
  });

  it("refuses what vLLM refuses, with its statuses and messages", async () => {
    await expectError(await lora("load", { lora_name: ADAPTER, lora_path: adapterDir }), 400, "InvalidUserInput", /has already been loaded/);
    await expectError(await lora("load", { lora_name: MODEL, lora_path: adapterDir }), 400, "InvalidUserInput", /base model's name/);
    await expectError(await lora("load", { lora_name: "x" }), 400, "InvalidUserInput", /^Both 'lora_name' and 'lora_path' must be provided\.$/);
    await expectError(await lora("load", { lora_name: "", lora_path: adapterDir }), 400, "InvalidUserInput", /Both/);
    await expectError(await lora("load", { lora_name: 3, lora_path: adapterDir }), 400, "BadRequestError", /'lora_name' must be a string/);
    await expectError(await lora("load", "{oops"), 400, "BadRequestError", /JSON/);
    const missing = join(tmp, "no-such-iteration");
    await expectError(
      await lora("load", { lora_name: "gone", lora_path: missing }),
      404,
      "NotFoundError",
      new RegExp(`^Loading lora gone failed: No adapter found for ${missing} \\(nothing to load under the adapter root`),
    );
    await mkdir(join(tmp, "empty"), { recursive: true });
    await expectError(
      await lora("load", { lora_name: "empty", lora_path: join(tmp, "empty") }),
      404,
      "NotFoundError",
      /No adapter found for .*holds no model\.bin/,
    );
    await writeFile(join(tmp, "junk.bin"), "not a checkpoint");
    await expectError(
      await lora("load", { lora_name: "junk", lora_path: join(tmp, "junk.bin") }),
      400,
      "BadRequestError",
      /^Loading lora junk failed: .*not a tiny weights file/,
    );
    await expectError(await fetch(`${server.url}/v1/load_lora_adapter`), 405, "MethodNotAllowedError");
    await expectError(await lora("unload", {}), 400, "InvalidUserInput", /'lora_name' needs to be provided/);
    await expectError(await lora("unload", { lora_name: "nope" }), 404, "NotFoundError", /^The lora adapter 'nope' cannot be found\.$/);
    await expectError(await lora("unload", { lora_name: MODEL }), 404, "NotFoundError", /cannot be found/);
    // Nothing refused was loaded, nor left open.
    expect((await models()).map((m) => m.id)).toEqual([MODEL, ADAPTER]);
    expect(openedAdapters).toHaveLength(1);
  });

  it("unloads at once for new requests, lets running and queued ones finish, then frees the adapter", async () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    // Whatever fails below, later tests must not find the adapters' model calls held.
    onTestFinished(() => {
      open();
      gate = undefined;
    });
    const routed = () => server.stats().models[ADAPTER]!;
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise((r) => setTimeout(r, 1));
    };
    const sampled = Array.from({ length: 12 }, (_, i) => ({ prompt: poolPrompt(7, 120 + i), seed: 300 + i }));
    const send = ({ prompt, seed }: (typeof sampled)[number]) => completion({ model: ADAPTER, messages: [userTurn(prompt)], n: 4, temperature: 1, seed });
    // One request goes to the model and waits there; the rest queue behind it.
    const { batches, requests } = routed();
    const adapterReplies = [send(sampled[0]!)];
    await until(() => routed().batches > batches);
    adapterReplies.push(...sampled.slice(1).map(send));
    await until(() => routed().requests === requests + sampled.length);
    expect(routed().items).toBeLessThan(routed().requests);

    let unloadedAt: number | undefined;
    const unloading = lora("unload", { lora_name: ADAPTER }).then((res) => ((unloadedAt = performance.now()), res));
    // Taken out of routing at once: listed no more, and a new request for it is refused...
    await until(() => !server.stats().models[ADAPTER]);
    expect((await models()).map((m) => m.id)).toEqual([MODEL]);
    await expectError(
      await post({ model: ADAPTER, messages: [userTurn(poolPrompt(7, 150))] }),
      404,
      "NotFoundError",
      new RegExp(`^The model \`${ADAPTER}\` does not exist\\.$`),
    );
    // ...while the base keeps answering, and the unload waits for the adapter's work.
    const baseReplies = [0, 1, 2].map((i) => ask(poolPrompt(7, 140 + i), greedy));
    for (const [i, reply] of (await Promise.all(baseReplies)).entries()) {
      expect(reply).toEqual((await local.generate([poolPrompt(7, 140 + i)], { k: 1, temperature: 0, seed: 0 }))[0]);
    }
    expect(unloadedAt).toBeUndefined();
    const openedAt = performance.now();
    open();
    gate = undefined;

    const replies = await Promise.all(adapterReplies);
    for (const [k, reply] of replies.entries()) {
      const { prompt, seed } = sampled[k]!;
      expect(reply.model).toBe(ADAPTER);
      const [expected] = await localAdapter.generate([{ ...prompt, id: `seed-${seed}` }], { k: 4, temperature: 1, seed: 0 });
      expect(reply.choices.map((c: Json) => c.message.content)).toEqual(expected);
    }
    const unloaded = await unloading;
    expect(unloadedAt).toBeGreaterThan(openedAt);
    expect(unloaded.status).toBe(200);
    expect(await unloaded.text()).toBe(`Success: LoRA adapter '${ADAPTER}' removed successfully.`);

    await expectError(await lora("unload", { lora_name: ADAPTER }), 404, "NotFoundError", /cannot be found/);
    expect(Object.keys(server.stats().models)).toEqual([MODEL]);
    // Its worker is gone.
    await expect(openedAdapters[0]!.generate([poolPrompt(7, 150)], { k: 1, temperature: 0, seed: 0 })).rejects.toThrow(/worker/);
    expect(await ask(poolPrompt(7, 150), greedy)).toEqual((await local.generate([poolPrompt(7, 150)], { k: 1, temperature: 0, seed: 0 }))[0]);
  });

  it("has no adapter routes without openAdapter, and close() frees the adapters a server holds", async () => {
    const plain = await startOpenAiServer({ backend, model: MODEL, port: 0 });
    try {
      await expectError(await lora("load", { lora_name: ADAPTER, lora_path: adapterDir }, plain), 404, "NotFoundError", /not enabled/);
      await expectError(await lora("unload", { lora_name: ADAPTER }, plain), 404, "NotFoundError");
    } finally {
      await plain.close();
    }
    const other = await startOpenAiServer({ backend, model: MODEL, port: 0, openAdapter });
    const opened = openedAdapters.length;
    try {
      // lora_path may also name the checkpoint file itself.
      expect((await lora("load", { lora_name: ADAPTER, lora_path: join(adapterDir, "model.bin") }, other)).status).toBe(200);
      const prompt = poolPrompt(7, 100);
      const res = await fetch(`${other.url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: ADAPTER, messages: [userTurn(prompt)], ...greedy }),
      });
      expect(((await res.json()) as Json).choices[0].message.content).toBe((await localAdapter.generate([prompt], { k: 1, temperature: 0, seed: 0 }))[0]![0]);
    } finally {
      await other.close();
    }
    expect(openedAdapters).toHaveLength(opened + 1);
    await expect(openedAdapters[opened]!.generate([poolPrompt(7, 100)], { k: 1, temperature: 0, seed: 0 })).rejects.toThrow(/worker/);
    // The base backend is the caller's: still open.
    expect(await ask(poolPrompt(7, 100), greedy)).toHaveLength(1);
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
    child = spawn(tsx, ["deploy/cli/cli.ts", "serve", "--peer", MODEL, "--port", "0", "--adapter-dir", dirname(ADAPTER_CHECKPOINT)], {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
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
    // The adapter endpoints are on; SIGTERM below also has the adapter to free.
    const loadAdapter = (path: string) =>
      fetch(`${url}/load_lora_adapter`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ lora_name: "it1", lora_path: path }),
      });
    // Another member's checkpoint is not an adapter of this base: refused, with why.
    const foreign = await loadAdapter(ADAPTER_CHECKPOINT);
    expect(foreign.status).toBe(422);
    expect(((await foreign.json()) as Json).error.message).toMatch(
      /does not fit the served base: it was made for 'lostspace' and its architecture differs: posQuery false/,
    );
    const load = await loadAdapter(join(dirname(ADAPTER_CHECKPOINT), `${MODEL}.bin`));
    expect(await load.text()).toBe("Success: LoRA adapter 'it1' added successfully.");
    const models: Json = await (await fetch(`${url}/models`)).json();
    expect(models.data.map((m: Json) => [m.id, m.parent])).toEqual([
      [MODEL, null],
      ["it1", MODEL],
    ]);
    const t0 = performance.now();
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
