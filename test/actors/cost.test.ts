/**
 * Cost counting: the openai backend against a real `pop serve` counts each HTTP request it sent
 * (retries included) with the tokens the server reported; the tiny backend counts its own, in
 * process and behind its worker thread; the actor's meter keeps them by iteration and phase.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TinyBackend } from "../../actors/models/tiny/backend.ts";
import { tinyPlug } from "../../actors/models/tiny/plug.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";
import { answerIds, questionIds } from "../../actors/models/tiny/vocab.ts";
import { OpenAiBackend } from "../../actors/models/openai/backend.ts";
import { startOpenAiServer, type OpenAiServer } from "../../actors/serve/openai-server.ts";
import { wordCount } from "../../actors/serve/request.ts";
import { meterUsage, reportUsage } from "../../actors/models/usage.ts";
import { CostMeter } from "../../actors/cost.ts";
import type { ModelBackend, ScoreDistributions } from "../../actors/models/contract.ts";
import { CRITERIA } from "../../protocol/mod.ts";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.ts";

const CHECKPOINT = "actors/models/tiny/checkpoints/countless.bin";

describe("cost counted by the openai backend against pop serve", () => {
  let served: ModelBackend & ScoreDistributions;
  let server: OpenAiServer;
  let proxy: FaultProxy;
  const open = () => OpenAiBackend.open({ baseUrl: proxy.baseUrl, model: "countless", backoffMs: 20, startupWaitMs: 5000 });

  beforeAll(async () => {
    served = (await tinyPlug.open({ weights: CHECKPOINT }, { peer: "countless" })) as ModelBackend & ScoreDistributions;
    server = await startOpenAiServer({ backend: served, model: "countless" });
    proxy = await startFaultProxy(server.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
    await served?.dispose();
  });

  it("answering P prompts is P requests, with exactly the tokens the server reported; a retried request counts again", async () => {
    const be = await open();
    const prompts = poolPrompts(7, 40, 5);
    const { result, usage } = await meterUsage(() => be.generate(prompts, { k: 3, temperature: 1, seed: 2 }));
    expect(usage.requests).toBe(prompts.length);
    // pop serve counts words: the question's, and each answer's (at least one, the end of answer).
    expect(usage.promptTokens).toBe(prompts.reduce((n, p) => n + wordCount(p.question), 0));
    expect(usage.completionTokens).toBe(result.flat().reduce((n, a) => n + Math.max(1, wordCount(a)), 0));
    expect(usage.seconds).toBeGreaterThan(0);
    expect(usage.modelSeconds).toBeUndefined();

    proxy.failNext(2, 503);
    const again = await meterUsage(() => be.generate(prompts, { k: 3, temperature: 1, seed: 2 }));
    expect(again.result).toEqual(result);
    expect(again.usage).toMatchObject({ requests: prompts.length + 2, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens });
    await be.dispose();
  });

  it("judging counts every request it sends, and nothing outside a metered call", async () => {
    const be = await open();
    const items = poolPrompts(7, 50, 2).map((prompt) => ({ prompt, answer: "red" }));
    const before = be.client.stats.requests;
    const { usage } = await meterUsage(() => be.judge(items));
    expect(usage.requests).toBe(be.client.stats.requests - before);
    expect(usage.requests).toBeGreaterThanOrEqual(items.length);
    expect(usage.promptTokens).toBeGreaterThan(0);
    expect(usage.completionTokens).toBeGreaterThan(0);
    await be.generate(
      items.map((i) => i.prompt),
      { k: 1, temperature: 0, seed: 0 },
    ); // not metered: dropped
    await be.dispose();
  });
});

describe("cost counted by the tiny backend", () => {
  it("counts one request per call with the tokens it read and generated and its compute time, in process and behind its worker", async () => {
    const prompts = poolPrompts(7, 60, 4);
    const read = prompts.reduce((n, p) => n + questionIds(p.question).length + 2, 0);
    const generated = (answers: string[][]) => answers.flat().reduce((n, a) => n + answerIds(a).length + 1, 0);
    const local = await TinyBackend.load(CHECKPOINT);
    const worker = await tinyPlug.open({ weights: CHECKPOINT }, { peer: "countless" });
    try {
      for (const be of [local, worker] as ModelBackend[]) {
        const { result, usage } = await meterUsage(() => be.generate(prompts, { k: 2, temperature: 1, seed: 3 }));
        expect(usage).toMatchObject({ requests: 1, promptTokens: read, completionTokens: generated(result) });
        expect(usage.seconds).toBeGreaterThan(0);
        expect(usage.modelSeconds).toBeGreaterThan(0);
        expect(usage.modelSeconds).toBeLessThanOrEqual(usage.seconds + 1e-9);
        const items = prompts.map((prompt) => ({ prompt, answer: "red" }));
        const judged = await meterUsage(() => be.judge(items));
        expect(judged.usage).toMatchObject({ requests: 1, promptTokens: read + items.length * 3, completionTokens: items.length * CRITERIA.length });
      }
    } finally {
      await local.dispose();
      await worker.dispose();
    }
  });
});

describe("the actor's cost meter", () => {
  it("keeps usage by iteration and phase, counts failed calls, and passes nested meters' counts on", async () => {
    const meter = new CostMeter();
    await meter.meter(1, "answer", async () => reportUsage({ requests: 2, promptTokens: 5, completionTokens: 1, seconds: 0.5 }));
    await meter.meter(1, "answer", async () => reportUsage({ requests: 1, seconds: 0.25, modelSeconds: 0.1 }));
    await expect(
      meter.meter(1, "judge", async () => {
        reportUsage({ requests: 1, seconds: 1 });
        throw new Error("model failed");
      }),
    ).rejects.toThrow("model failed");
    const outer = await meterUsage(() => meter.meter(2, "train", async () => reportUsage({ requests: 1, seconds: 2 })));
    expect(outer.usage.requests).toBe(1);
    expect(meter.of(1)).toEqual({
      answer: { requests: 3, promptTokens: 5, completionTokens: 1, seconds: 0.75, modelSeconds: 0.1 },
      judge: { requests: 1, promptTokens: 0, completionTokens: 0, seconds: 1 },
    });
    const snap = meter.snapshot();
    expect(snap.iterations.map((i) => i.iteration)).toEqual([1, 2]);
    expect(snap.total.train).toEqual({ requests: 1, promptTokens: 0, completionTokens: 0, seconds: 2 });
  });
});
