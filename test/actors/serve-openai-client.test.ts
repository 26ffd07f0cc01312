/**
 * `pop serve` as the official `openai` npm client sees it: a real `pop serve` process, driven by
 * the client every OpenAI user has — model list and lookup, log-probs of every answer token,
 * finish reasons, stop strings, top_p, refused fields, streaming, typed errors — and by our own
 * `openai` backend client against the same server. Also its /metrics and adapter loading in place.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import OpenAI, { BadRequestError, NotFoundError } from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataUrl } from "../../actors/images/codec.ts";
import { OpenAiClient } from "../../actors/models/openai/client.ts";
import { ServerRequestError } from "../../actors/models/openai/errors.ts";
import { errorMessageOf } from "../../actors/models/openai/wire.ts";
import { badExpositionLines, sample } from "../support/prometheus.ts";
import { OpenAiBackend } from "../../actors/models/openai/backend.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";
import type { PromptInput } from "../../actors/models/contract.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHECKPOINTS = join(ROOT, "actors/models/tiny/checkpoints");
const MODEL = "ocrdumb";

let child: ChildProcess;
let base: string;
let tmp: string;
let client: OpenAI;

/** The user turn of a pool prompt: its image as a PNG data URL, then its question. */
const turn = (p: PromptInput) => ({
  role: "user" as const,
  content: [
    { type: "image_url" as const, image_url: { url: dataUrl(p.images[0]!) } },
    { type: "text" as const, text: p.question },
  ],
});
const ask = (p: PromptInput, extra: Partial<ChatCompletionCreateParamsNonStreaming> = {}) =>
  client.chat.completions.create({ model: MODEL, messages: [turn(p)], ...extra });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "pop-serve-client-"));
  await copyFile(join(CHECKPOINTS, `${MODEL}.bin`), join(tmp, "mine.bin"));
  await copyFile(join(CHECKPOINTS, "lostspace.bin"), join(tmp, "other.bin"));
  child = spawn(process.execPath, ["--import", "tsx", "deploy/cli/cli.ts", "serve", "--peer", MODEL, "--port", "0", "--adapter-dir", tmp], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (c) => (stderr += c));
  base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'serving' line in 60 s; stderr:\n${stderr}`)), 60_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /^serving \S+ at (http:\/\/\S+)\/v1$/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`pop serve exited with ${code}; stderr:\n${stderr}`)));
  });
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A prompt whose greedy answer has at least two words (so a cut and a stop string show), with that answer. */
let long: { prompt: PromptInput; answer: string } | undefined;
async function longAnswer() {
  if (long) return long;
  for (const prompt of poolPrompts(11, 0, 40)) {
    const answer = (await ask(prompt, { temperature: 0 })).choices[0]!.message.content!;
    if (answer.split(" ").length >= 2) return (long = { prompt, answer });
  }
  throw new Error("no pool prompt has a greedy answer of two words or more");
}

describe("pop serve driven by the official openai client", () => {
  it("lists and looks up models; an unknown one is a NotFoundError", async () => {
    const list = [];
    for await (const m of client.models.list()) list.push(m.id);
    expect(list).toEqual([MODEL]);
    expect(await client.models.retrieve(MODEL)).toMatchObject({ id: MODEL, object: "model", owned_by: "pop" });
    const missing = await client.models.retrieve("gpt-4o").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).message).toMatch(/gpt-4o/);
    const chat = await ask(poolPrompts(11, 0, 1)[0]!, { model: "gpt-4o" }).catch((e: unknown) => e);
    expect(chat).toBeInstanceOf(NotFoundError);
    expect((chat as NotFoundError).param).toBe("model");
  });

  it("gives every answer token's log-prob and top_logprobs; a seeded reply repeats", async () => {
    const prompt = poolPrompts(11, 3, 1)[0]!;
    const reply = await ask(prompt, { n: 3, seed: 7, temperature: 1, logprobs: true, top_logprobs: 4 });
    expect(reply.choices).toHaveLength(3);
    for (const c of reply.choices) {
      const tokens = c.logprobs!.content!;
      expect(tokens.length).toBeGreaterThan(0);
      expect(tokens.map((t) => t.token).join("")).toBe(c.message.content);
      for (const t of tokens) {
        expect(t.logprob).toBeLessThanOrEqual(0);
        expect(t.bytes).toEqual([...Buffer.from(t.token)]);
        expect(t.top_logprobs).toHaveLength(4);
        // Best first, and the chosen token is no likelier than the best alternative.
        expect(t.top_logprobs.map((x) => x.logprob)).toEqual([...t.top_logprobs.map((x) => x.logprob)].sort((a, b) => b - a));
        expect(t.logprob).toBeLessThanOrEqual(t.top_logprobs[0]!.logprob + 1e-9);
      }
    }
    const again = await ask(prompt, { n: 3, seed: 7, temperature: 1 });
    expect(again.choices.map((c) => c.message.content)).toEqual(reply.choices.map((c) => c.message.content));
    expect(again.choices.every((c) => c.logprobs === null)).toBe(true);
  });

  it("says 'length' when max_tokens cut the reply and 'stop' otherwise; stop strings end it", async () => {
    const { prompt, answer } = await longAnswer();
    const full = await ask(prompt, { temperature: 0 });
    expect(full.choices[0]!.finish_reason).toBe(answer.split(" ").length < 5 ? "stop" : "length");
    const cut = await ask(prompt, { temperature: 0, max_tokens: 1, logprobs: true });
    expect(cut.choices[0]).toMatchObject({ finish_reason: "length", message: { content: answer.split(" ")[0] } });
    expect(cut.choices[0]!.logprobs!.content).toHaveLength(1);
    const second = answer.split(" ")[1]!;
    const stopped = await ask(prompt, { temperature: 0, stop: [second, "never there"] });
    expect(stopped.choices[0]).toMatchObject({ finish_reason: "stop", message: { content: answer.slice(0, answer.indexOf(second)) } });
  });

  it("honours top_p: a nucleus of the likeliest token alone samples the greedy answer", async () => {
    const { prompt, answer } = await longAnswer();
    const nucleus = await ask(prompt, { temperature: 1.5, top_p: 0, n: 6, seed: 2 });
    expect(nucleus.choices.map((c) => c.message.content)).toEqual(Array(6).fill(answer));
  });

  it("refuses a field it cannot honour with a 400 naming it", async () => {
    const prompt = poolPrompts(11, 0, 1)[0]!;
    for (const [field, value] of [
      ["presence_penalty", 0.5],
      ["frequency_penalty", 1],
      ["logit_bias", { "42": 5 }],
      ["tools", [{ type: "function", function: { name: "f" } }]],
    ] as const) {
      const error = await ask(prompt, { [field]: value }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).status).toBe(400);
      expect((error as BadRequestError).param).toBe(field);
    }
    // The neutral values change nothing, so they are accepted.
    expect((await ask(prompt, { presence_penalty: 0, frequency_penalty: 0 })).choices).toHaveLength(1);
  });

  it("streams chunks as OpenAI does: role, content deltas with log-probs, finish, usage, and the same text as unstreamed", async () => {
    const prompt = poolPrompts(11, 5, 1)[0]!;
    const settings = { n: 2, seed: 9, temperature: 1, logprobs: true, top_logprobs: 2 } as const;
    const plain = await ask(prompt, settings);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [turn(prompt)],
      ...settings,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ["", ""];
    const finish: (string | null)[] = [null, null];
    const roles: string[] = [];
    const tokens: string[][] = [[], []];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      expect(chunk.object).toBe("chat.completion.chunk");
      if (!chunk.choices.length) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.role) roles.push(c.delta.role);
        text[c.index] += c.delta.content ?? "";
        if (c.finish_reason) finish[c.index] = c.finish_reason;
        tokens[c.index]!.push(...(c.logprobs?.content ?? []).map((t) => t.token));
      }
    }
    expect(roles).toEqual(["assistant", "assistant"]);
    expect(text).toEqual(plain.choices.map((c) => c.message.content));
    expect(finish).toEqual(plain.choices.map((c) => c.finish_reason));
    expect(tokens).toEqual(plain.choices.map((c) => c.logprobs!.content!.map((t) => t.token)));
    expect(usage).toEqual(plain.usage);
    expect(chunks).toBeGreaterThan(4);
  });

  it("drops a stream whose client hangs up, and keeps serving", async () => {
    const prompt = poolPrompts(11, 6, 1)[0]!;
    const abort = new AbortController();
    const stream = await client.chat.completions.create({ model: MODEL, messages: [turn(prompt)], stream: true }, { signal: abort.signal });
    const seen = await (async () => {
      try {
        for await (const chunk of stream) {
          abort.abort();
          return chunk;
        }
      } catch {
        // the abort ends the iteration
      }
      return undefined;
    })();
    expect(seen?.choices[0]?.delta.role).toBe("assistant");
    // Nothing is left in flight once the server has seen the hang-up.
    for (let i = 0; i < 50 && !/^pop_serve_requests_in_flight 0$/m.test(await metrics()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await metrics()).toMatch(/^pop_serve_requests_in_flight 0$/m);
    expect((await ask(prompt, { seed: 1 })).choices).toHaveLength(1);

    // A plain request whose client hangs up while the model works is counted as 499 (client gone; so may the stream above be), not as the server's 500.
    const gone = new AbortController();
    const asked = client.chat.completions
      .create({ model: MODEL, messages: [turn(prompt)], n: 16, max_tokens: 64, temperature: 1 }, { signal: gone.signal, maxRetries: 0 })
      .catch((e: unknown) => e);
    for (let i = 0; i < 200 && !/^pop_serve_requests_in_flight [1-9]/m.test(await metrics()); i++) await new Promise((r) => setTimeout(r, 5));
    gone.abort();
    expect(await asked).toBeInstanceOf(Error);
    const chat = (status: number) => new RegExp(`^pop_serve_requests_total\\{route="/v1/chat/completions",status="${status}"\\} [1-9]\\d*$`, "m");
    for (let i = 0; i < 50 && !chat(499).test(await metrics()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await metrics()).toMatch(chat(499));
    expect(await metrics()).not.toMatch(/status="500"/);
  });

  it("is read by our own openai backend client: completions, log-probs, model list and nested errors", async () => {
    const ours = new OpenAiClient({ baseUrl: `${base}/v1`, retries: 0 });
    const prompt = poolPrompts(11, 0, 1)[0]!;
    const reply = await ours.chat({ model: MODEL, messages: [turn(prompt)], seed: 1, logprobs: true, top_logprobs: 2 }, "a test question");
    expect(reply.choices[0]!.logprobs!.content!.length).toBeGreaterThan(0);
    expect((await ours.models()).data.map((m) => m.id)).toEqual([MODEL]);
    const refused = await ours.chat({ model: "gpt-4o", messages: [turn(prompt)] }, "a test question").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ServerRequestError);
    expect((refused as ServerRequestError).status).toBe(404);
    expect((refused as Error).message).toMatch(/The model `gpt-4o` does not exist/);
    // The backend on top answers and judges (from top_logprobs) against the same server.
    const backend = await OpenAiBackend.open({ baseUrl: `${base}/v1`, model: MODEL, startupWaitMs: 5000 });
    try {
      expect((await backend.generate([prompt], { k: 2, temperature: 1, seed: 3 }))[0]).toHaveLength(2);
      const [judged] = await backend.judge([{ prompt, answer: "red" }]);
      expect("likert" in judged!).toBe(true);
    } finally {
      await backend.dispose();
    }
    // Both error shapes read: nested (OpenAI, current vLLM, pop serve) and vLLM's older flat one.
    expect(errorMessageOf({ error: { message: "nested", type: "BadRequestError", param: null, code: 400 } })).toBe("nested");
    expect(errorMessageOf({ object: "error", message: "flat", type: "BadRequestError", param: null, code: 400 })).toBe("flat");
  });

  it("exports Prometheus metrics: requests by route and status, tokens, in flight, latency, adapters", async () => {
    const text = await metrics();
    expect(text).toMatch(/^# TYPE pop_serve_requests_total counter$/m);
    expect(text).toMatch(/^pop_serve_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+$/m);
    expect(text).toMatch(/^pop_serve_requests_total\{route="\/v1\/models\/\{id\}",status="404"\} 1$/m);
    expect(text).toMatch(/^pop_serve_tokens_total\{model="ocrdumb",direction="out"\} [1-9]\d*$/m);
    expect(sample(text, "pop_serve_request_duration_seconds_bucket", { route: "/v1/chat/completions", le: "+Inf" })).toBeGreaterThan(0);
    expect(text).toMatch(/^pop_serve_adapters_loaded 0$/m);
    expect(badExpositionLines(text)).toEqual([]);
  });

  it("loads an adapter in place, and refuses one made for another base", async () => {
    const load = (body: object) =>
      fetch(`${base}/v1/load_lora_adapter`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(await (await load({ lora_name: "it1", lora_path: "mine.bin" })).text()).toMatch(/added successfully/);
    const twice = await load({ lora_name: "it1", lora_path: "mine.bin" });
    expect(twice.status).toBe(400);
    const swapped = await load({ lora_name: "it1", lora_path: "mine.bin", load_inplace: true });
    expect(swapped.status).toBe(200);
    expect(await swapped.text()).toMatch(/reloaded in place/);
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual([MODEL, "it1"]);
    expect((await ask(poolPrompts(11, 0, 1)[0]!, { model: "it1", seed: 1 })).model).toBe("it1");
    const foreign = await load({ lora_name: "other", lora_path: "other.bin" });
    expect(foreign.status).toBe(422);
    const body = (await foreign.json()) as { error: { message: string; type: string } };
    expect(body.error.message).toMatch(/does not fit the served base: it was made for 'lostspace'/);
    expect(await metrics()).toMatch(/^pop_serve_adapters_loaded 1$/m);
  });
});

async function metrics(): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}
