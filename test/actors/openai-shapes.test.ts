/**
 * The openai backend on recorded response shapes of vLLM, llama.cpp's server, Ollama and OpenAI
 * (test/fixtures/openai/, written by hand from each server's documentation and source), replayed
 * by a real HTTP server on loopback.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { OpenAiBackend } from "../../actors/models/openai/backend.ts";
import { OpenAiClient } from "../../actors/models/openai/client.ts";
import { ServerRequestError, ServerUnavailableError } from "../../actors/models/openai/errors.ts";
import { poolPrompt } from "../../actors/models/tiny/world.ts";
import { CRITERIA } from "../../protocol/mod.ts";

const DIR = "test/fixtures/openai";
interface Fixture {
  server: string;
  status: number;
  headers: Record<string, string>;
  body: unknown;
}
const load = (name: string): Fixture => JSON.parse(readFileSync(`${DIR}/${name}.json`, "utf8"));
const SERVERS = ["vllm", "llamacpp", "ollama", "openai"];
const has = (name: string) => readdirSync(DIR).includes(`${name}.json`);

/** A chat request as the replay server received it. */
type Sent = { n?: number; max_tokens?: number; messages?: { role: string; content: string | { type: string; text?: string }[] }[] };
/** The text of a request's first user turn (the rubric). */
const rubricOf = (r: Sent) => {
  const c = r.messages?.find((m) => m.role === "user")?.content;
  return typeof c === "string" ? c : (c ?? []).map((p) => p.text ?? "").join("\n");
};

/** Replays fixtures: GET /v1/models gets `models`; chat requests get `chat(body)`'s pick. */
let server: Server | undefined;
async function replay(models: Fixture, chat: (request: Sent) => Fixture): Promise<string> {
  server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const f = req.url?.endsWith("/models") ? models : chat(raw ? JSON.parse(raw) : {});
      res.writeHead(f.status, f.headers);
      res.end(typeof f.body === "string" ? f.body : JSON.stringify(f.body));
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

const modelOf = (f: Fixture) => (f.body as { data: { id: string }[] }).data[0]!.id;
const contents = (f: Fixture) => (f.body as { choices: { message: { content: string } }[] }).choices.map((c) => c.message.content);
const item = { prompt: poolPrompt(7, 0), answer: "red" };

type Entry = { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] };
const isDigit = (t: { token: string }) => /^\s*[1-5]\s*$/.test(t.token);
/** The generated tokens of a fixture's first choice, with their log-probs. */
const tokensOf = (f: Fixture) => (f.body as { choices: { logprobs: { content: Entry[] } }[] }).choices[0]!.logprobs.content;

/** The expected score a fixture's logprobs give, computed here independently of the backend. */
function expectedFrom(f: Fixture): number {
  return expectedAt(tokensOf(f).find(isDigit)!);
}

/** The expected digit over one generated token's top_logprobs. */
function expectedAt(first: Entry): number {
  const p = new Map<number, number>();
  for (const t of first.top_logprobs)
    if (/^\s*[1-5]\s*$/.test(t.token)) p.set(Number(t.token.trim()), (p.get(Number(t.token.trim())) ?? 0) + Math.exp(t.logprob));
  let z = 0,
    e = 0;
  for (const [d, q] of p) {
    z += q;
    e += d * q;
  }
  return e / z;
}

describe.each(SERVERS)("recorded %s responses", (name) => {
  const models = load(`${name}-models`);
  const open = (baseUrl: string) => OpenAiBackend.open({ baseUrl, model: modelOf(models), retries: 0, startupWaitMs: 1000 });

  it("lists its models, and k answers come from n or from one request per candidate", async () => {
    const n3 = load(`${name}-chat-n3`);
    const single = n3.status === 200 ? n3 : load(`${name}-judge-text`);
    const legacy = has(`${name}-chat-n3-legacy`) ? load(`${name}-chat-n3-legacy`) : undefined;
    for (const fixture of [n3, ...(legacy ? [legacy] : [])]) {
      let asked = 0;
      const be = await open(await replay(models, (req) => (asked++, (req.n ?? 1) > 1 ? fixture : single)));
      const [answers] = await be.generate([poolPrompt(7, 1)], { k: 3, temperature: 0.7, seed: 1 });
      expect(answers).toHaveLength(3);
      if (fixture.status === 200 && contents(fixture).length >= 3) {
        expect(answers).toEqual(
          contents(fixture)
            .slice(0, 3)
            .map((t) => t.trim()),
        );
        expect(asked).toBe(1);
      } else {
        // the server ignored or refused n: the rest came one request at a time
        for (const a of answers.slice(-2)) expect(contents(single).map((t) => t.trim())).toContain(a);
        expect(asked).toBeGreaterThan(1);
      }
      await be.dispose();
      await new Promise((r) => server!.close(r));
    }
  });

  it("reads a judgement from top_logprobs as the expected digit (per-criterion mode)", async () => {
    const f = load(`${name}-judge-logprobs`);
    const be = await open(await replay(models, () => f));
    const [j] = await be.judge([item], { mode: "per-criterion" });
    const hasLogprobs = (f.body as { choices: { logprobs?: unknown }[] }).choices[0]!.logprobs;
    if (!j || !("likert" in j)) throw new Error(`abstained: ${JSON.stringify(j)}`);
    const want = hasLogprobs ? expectedFrom(f) : Number(/[1-5]/.exec(contents(f)[0]!)![0]);
    for (const c of CRITERIA) expect(j.likert[c]).toBeCloseTo(want, 9);
    expect(be.judgeStats[hasLogprobs ? "logprobs" : "text"]).toBe(5);
  });

  it("reads a judgement from the reply text when there are no logprobs (per-criterion mode)", async () => {
    const f = load(`${name}-judge-text`);
    const be = await open(await replay(models, () => f));
    const [j] = await be.judge([item], { mode: "per-criterion" });
    const digit = Number(/[1-5]/.exec(contents(f)[0]!)![0]);
    expect(j).toEqual({ likert: Object.fromEntries(CRITERIA.map((c) => [c, digit])) });
    expect(be.judgeStats.text).toBe(5);
  });

  it.each(
    ["error-bad-request", "error-model-not-found", "error-overloaded", "error-server", "error-server-json", "error-bad-request-image-url"].filter((c) =>
      has(`${name}-${c}`),
    ),
  )("turns %s into an error that says what the server said and whether retrying helps", async (kind) => {
    const f = load(`${name}-${kind}`);
    const client = new OpenAiClient({ baseUrl: await replay(models, () => f), retries: 0 });
    const error = await client.chat({ model: "m", messages: [{ role: "user", content: "hi" }] }, "answering prompt p1").catch((e) => e);
    const retryable = f.status === 408 || f.status === 429 || f.status >= 500;
    expect(error).toBeInstanceOf(retryable ? ServerUnavailableError : ServerRequestError);
    expect(error.retryable).toBe(retryable);
    expect(error.message).toContain("answering prompt p1");
    expect(error.message).toContain(`HTTP ${f.status}`);
    const said = typeof f.body === "object" && f.body ? JSON.stringify(f.body) : "";
    const message = /"message":\s*"([^"]+)"/.exec(said)?.[1];
    if (message) expect(error.message).toContain(message);
  });
});

/**
 * Single-mode replies (one `criterion: digit` line per criterion) in the servers' shapes: a vLLM
 * reply with log-probs whose model stopped after four lines, and an Ollama reply without log-probs
 * whose model dressed the lines in Markdown.
 */
describe("single-mode judge replies", () => {
  const openOn = async (server: string, chat: (request: Sent) => Fixture) => {
    const models = load(`${server}-models`);
    return OpenAiBackend.open({ baseUrl: await replay(models, chat), model: modelOf(models), retries: 0, startupWaitMs: 1000 });
  };
  const lines = load("vllm-judge-lines-logprobs");
  const asked: string[] = [];
  /** Which request it was: "all" (the single-mode rubric) or the one criterion asked for. */
  const kindOf = (r: Sent) => /\nCriterion: ([a-z]+) — /.exec(rubricOf(r))?.[1] ?? (rubricOf(r).includes("on each criterion:") ? "all" : "?");
  afterEach(() => void asked.splice(0));

  it("reads each line's score at its digit in top_logprobs, and asks for the missing criterion alone", async () => {
    const digit = load("vllm-judge-logprobs");
    const be = await openOn("vllm", (r) => (asked.push(kindOf(r)), kindOf(r) === "all" ? lines : digit));
    const [j] = await be.judge([item]);
    expect(asked.sort()).toEqual(["all", "verbosity"]);
    if (!j || !("likert" in j)) throw new Error(`abstained: ${JSON.stringify(j)}`);
    const digits = tokensOf(lines).filter(isDigit);
    expect(digits).toHaveLength(4);
    for (const [i, c] of CRITERIA.slice(0, 4).entries()) expect(j.likert[c]).toBeCloseTo(expectedAt(digits[i]!), 9);
    expect(j.likert.verbosity).toBeCloseTo(expectedFrom(digit), 9);
    expect(be.judgeStats).toMatchObject({ logprobs: 5, text: 0, reasked: 1, abstained: 0 });
    await be.dispose();
  });

  it("abstains on the candidate when the missing criterion stays unreadable alone, after a reminder", async () => {
    const text = load("vllm-judge-text");
    // The same reply shape with a text no score can be read from.
    const unreadable = { ...text, body: JSON.parse(JSON.stringify(text.body).replace('"content":"4"', '"content":"The answer is fine."')) };
    const be = await openOn("vllm", (r) => (asked.push(kindOf(r)), kindOf(r) === "all" ? lines : unreadable));
    const [j] = await be.judge([item]);
    expect(asked.sort()).toEqual(["all", "verbosity", "verbosity"]);
    expect(j).toEqual({ abstained: expect.stringMatching(/^verbosity: reply "The answer is fine\." holds no score/) });
    expect(be.judgeStats).toMatchObject({ logprobs: 4, reasked: 1, retried: 1, abstained: 1 });
    await be.dispose();
  });

  it("reads the scores from the lines' text, Markdown and capitals included, in one request", async () => {
    const f = load("ollama-judge-lines-text");
    const be = await openOn("ollama", (r) => (asked.push(kindOf(r)), f));
    const [j] = await be.judge([item]);
    expect(asked).toEqual(["all"]);
    expect(j).toEqual({ likert: { helpfulness: 4, correctness: 3, coherence: 5, complexity: 4, verbosity: 5 } });
    expect(be.judgeStats).toMatchObject({ text: 5, reasked: 0 });
    await be.dispose();
  });
});
