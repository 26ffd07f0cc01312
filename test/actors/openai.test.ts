/**
 * Contract of the `openai` backend against `pop serve`: a real HTTP server on loopback with a
 * real (tiny) model behind it, and a proxy that injects the faults real servers show.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TinyBackend, JUDGE_TEMPERATURE } from "../../actors/models/tiny/backend.ts";
import { tinyPlug } from "../../actors/models/tiny/plug.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";
import { OpenAiBackend } from "../../actors/models/openai/backend.ts";
import { ServerUnavailableError } from "../../actors/models/openai/errors.ts";
import { startOpenAiServer, type OpenAiServer } from "../../actors/serve/openai-server.ts";
import type { ModelBackend, ScoreDistributions } from "../../actors/models/contract.ts";
import { CRITERIA } from "../../protocol/mod.ts";
import { freePort } from "../support/ports.ts";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.ts";

const CHECKPOINT = "actors/models/tiny/checkpoints/countless.bin";

describe("the openai backend against pop serve", () => {
  let served: ModelBackend & ScoreDistributions;
  let server: OpenAiServer;
  let proxy: FaultProxy;
  let local: TinyBackend;
  const open = (extra: Partial<Parameters<typeof OpenAiBackend.open>[0]> = {}) =>
    OpenAiBackend.open({ baseUrl: proxy.baseUrl, model: "countless", backoffMs: 20, startupWaitMs: 5000, ...extra });

  beforeAll(async () => {
    served = (await tinyPlug.open({ weights: CHECKPOINT }, { peer: "countless" })) as ModelBackend & ScoreDistributions;
    server = await startOpenAiServer({ backend: served, model: "countless" });
    proxy = await startFaultProxy(server.url);
    local = await TinyBackend.load(CHECKPOINT);
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
    await served?.dispose();
    await local?.dispose();
  });

  it("answers with images, k candidates from one request with n, and greedy answers equal the model's own", async () => {
    const be = await open();
    const prompts = poolPrompts(7, 0, 6);
    const before = be.client.stats.requests;
    const sampled = await be.generate(prompts, { k: 3, temperature: 1, seed: 4 });
    expect(sampled.map((a) => a.length)).toEqual([3, 3, 3, 3, 3, 3]);
    expect(be.client.stats.requests - before).toBe(prompts.length); // n = k in one request each
    expect(await be.generate(prompts, { k: 3, temperature: 1, seed: 4 })).toEqual(sampled); // seeded
    const greedy = await be.generate(prompts, { k: 1, temperature: 0, seed: 0 });
    expect(greedy).toEqual(await local.generate(prompts, { k: 1, temperature: 0, seed: 0 }));
    await be.dispose();
  });

  it("reads judgements from top_logprobs: the same scores as the model judging in process", async () => {
    const be = await open({ judgeTemperature: JUDGE_TEMPERATURE });
    const prompts = poolPrompts(7, 10, 4);
    const answers = ["red", "two", "it is blue", "a h t"];
    const items = prompts.flatMap((prompt) => answers.map((answer) => ({ prompt, answer })));
    const remote = await be.judge(items);
    const mine = await local.scores(items);
    for (const [i, j] of remote.entries()) {
      if (!("likert" in j)) throw new Error(`abstained: ${j.abstained}`);
      for (const c of CRITERIA) expect(j.likert[c]).toBeCloseTo(mine[i]![c], 4);
    }
    expect(be.judgeStats.logprobs).toBe(items.length * CRITERIA.length);
    // Without logprobs the score is read from the reply text: the most likely digit.
    const text = await open({ topLogprobs: 0 });
    const greedy = await text.judge(items.slice(0, 4));
    expect(text.judgeStats.text).toBe(4 * CRITERIA.length);
    for (const j of greedy) if ("likert" in j) for (const c of CRITERIA) expect(Number.isInteger(j.likert[c])).toBe(true);
    await be.dispose();
    await text.dispose();
  });

  it("rides out 429 and 503 answers with backoff and succeeds", async () => {
    const be = await open();
    proxy.failNext(2, 429, { "retry-after": "0" });
    proxy.failNext(1, 503);
    const out = await be.generate(poolPrompts(7, 20, 1), { k: 2, temperature: 1, seed: 1 });
    expect(out[0]).toHaveLength(2);
    expect(be.client.stats.retries).toBe(3);
    await be.dispose();
  });

  it("abstains, after asking again, when a judgement cannot be read", async () => {
    const be = await open();
    proxy.garbageJudgements = true;
    try {
      const [j] = await be.judge([{ prompt: poolPrompts(7, 30, 1)[0]!, answer: "red" }]);
      expect(j).toEqual({ abstained: expect.stringMatching(/holds no score/) });
      expect(be.judgeStats.retried).toBeGreaterThanOrEqual(1);
      expect(be.judgeStats.abstained).toBe(1);
    } finally {
      proxy.garbageJudgements = false;
    }
    await be.dispose();
  });

  it("says which server and which request failed when the server is down, and that retrying helps", async () => {
    const be = await open({ retries: 2 });
    proxy.down = true;
    try {
      const error = await be.generate(poolPrompts(7, 40, 1), { k: 1, temperature: 1, seed: 1 }).catch((e) => e);
      expect(error).toBeInstanceOf(ServerUnavailableError);
      expect(error.retryable).toBe(true);
      expect(error.message).toContain(proxy.baseUrl);
      expect(error.message).toMatch(/answering prompt tiny-pool-7-40/);
      expect(error.message).toMatch(/failed 3 times/);
    } finally {
      proxy.down = false;
    }
    await be.dispose();
  });

  it("refuses at start a model the server does not serve, and a server that never comes up", async () => {
    await expect(open({ model: "nope" })).rejects.toThrow(/does not serve a model named 'nope'; it serves: countless/);
    const port = await freePort();
    await expect(OpenAiBackend.open({ baseUrl: `http://127.0.0.1:${port}/v1`, model: "x", startupWaitMs: 500 })).rejects.toThrow(
      /did not come up within 1 s.*ECONNREFUSED/s,
    );
  });
});
