/**
 * The experiment's `judging.mode` on the openai backend against `pop serve` (a real HTTP server
 * on loopback with a tiny checkpoint behind it): "single" asks once per candidate for all five
 * criteria and reads the same scores that "per-criterion" reads from five requests. Requests are
 * counted by the server itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JUDGE_TEMPERATURE, TinyBackend } from "../../actors/models/tiny/backend.ts";
import { tinyPlug } from "../../actors/models/tiny/plug.ts";
import { poolPrompts } from "../../actors/models/tiny/world.ts";
import { OpenAiBackend } from "../../actors/models/openai/backend.ts";
import { judgeOnce } from "../../actors/models/judge-once.ts";
import { readScoreLines } from "../../actors/models/openai/score-lines.ts";
import { startOpenAiServer, type OpenAiServer, type ServableBackend } from "../../actors/serve/openai-server.ts";
import type { Judgement, JudgeInput } from "../../actors/models/contract.ts";
import { CRITERIA, JUDGING_MODES, type LikertScores } from "../../protocol/mod.ts";

const CHECKPOINT = "actors/models/tiny/checkpoints/countless.bin";
const MODEL = "countless";

describe("judging modes against pop serve", () => {
  let served: ServableBackend;
  let server: OpenAiServer;
  let local: TinyBackend;
  const open = (extra: Partial<Parameters<typeof OpenAiBackend.open>[0]> = {}) =>
    OpenAiBackend.open({ baseUrl: `${server.url}/v1`, model: MODEL, startupWaitMs: 5000, ...extra });
  /** Chat requests the server has answered for the model. */
  const servedRequests = () => server.stats().models[MODEL]!.requests;

  beforeAll(async () => {
    served = (await tinyPlug.open({ weights: CHECKPOINT }, { peer: MODEL })) as ServableBackend;
    server = await startOpenAiServer({ backend: served, model: MODEL });
    local = await TinyBackend.load(CHECKPOINT);
  });
  afterAll(async () => {
    await server?.close();
    await served?.dispose();
    await local?.dispose();
  });

  // What a judge gets for one prompt: the other authors' k candidates each (here 2 authors x k = 3).
  const prompts = poolPrompts(7, 50, 3);
  const answers = ["red", "two", "it is blue", "a h t", "three circles", "green square"];
  const items: JudgeInput[] = prompts.flatMap((prompt) => answers.map((answer) => ({ prompt, answer })));
  const likert = (j: Judgement): LikertScores => {
    if (!("likert" in j)) throw new Error(`abstained: ${j.abstained}`);
    return j.likert;
  };

  it("gives the same scores in both modes, single mode with one request per candidate and per-criterion with five", async () => {
    const be = await open({ judgeTemperature: JUDGE_TEMPERATURE });
    const got: Record<string, LikertScores[]> = {};
    const requests: Record<string, number> = {};
    for (const mode of JUDGING_MODES) {
      const before = servedRequests();
      got[mode] = (await judgeOnce(be, items, { mode })).map(likert);
      requests[mode] = servedRequests() - before;
    }
    expect(requests).toEqual({ single: items.length, "per-criterion": items.length * CRITERIA.length });
    const mine = await local.scores(items);
    for (const [i, single] of got.single!.entries()) {
      for (const c of CRITERIA) {
        expect(single[c]).toBeCloseTo(got["per-criterion"]![i]![c], 9);
        expect(single[c]).toBeCloseTo(mine[i]![c], 4); // and both are the model's own judgement
      }
    }
    // Every criterion of every candidate came from the log-probs; nothing was asked again.
    expect(be.judgeStats).toMatchObject({ logprobs: 2 * items.length * CRITERIA.length, text: 0, reasked: 0, retried: 0, abstained: 0 });
    await be.dispose();
  });

  it("is single by default, and reads the lines' text when the server gives no log-probs", async () => {
    const be = await open({ topLogprobs: 0 });
    const before = servedRequests();
    const fromText = (await be.judge(items.slice(0, 4))).map(likert);
    expect(servedRequests() - before).toBe(4);
    expect(be.judgeStats).toMatchObject({ logprobs: 0, text: 4 * CRITERIA.length, reasked: 0 });
    const dists = await local.judgeDistributions(items.slice(0, 4));
    for (const [i, s] of fromText.entries()) {
      // temperature 0: each line's digit is the model's most likely score for that criterion
      for (const [c, name] of CRITERIA.entries()) expect(s[name]).toBe(dists[i]![c]!.indexOf(Math.max(...dists[i]![c]!)) + 1);
    }
    await be.dispose();
  });
});

describe("reading a single-mode reply's text", () => {
  const read = (content: string) => readScoreLines({ message: { content } }, CRITERIA);

  it("takes the number after each criterion's name, whatever the order, list markers or Markdown", () => {
    const r = read("1. Verbosity: 2\n- **correctness** = 3\n> coherence — 4.5\nhelpfulness:5\n## Complexity: 1/5");
    expect(r.scores).toEqual({
      verbosity: { score: 2, from: "text" },
      correctness: { score: 3, from: "text" },
      coherence: { score: 4.5, from: "text" },
      helpfulness: { score: 5, from: "text" },
      complexity: { score: 1, from: "text" },
    });
    expect(r.missing).toEqual({});
  });

  it("says which criteria are missing or out of range, and does not read a range as a score", () => {
    const r = read("helpfulness (1-5): 4\ncorrectness: 7\ncoherence: 3\nThe answer is verbose.");
    expect(r.scores).toEqual({ coherence: { score: 3, from: "text" } });
    expect(Object.keys(r.missing).sort()).toEqual(["complexity", "correctness", "helpfulness", "verbosity"]);
    expect(r.missing.correctness).toMatch(/correctness 7, outside 1\.\.5/);
    expect(r.missing.verbosity).toMatch(/holds no verbosity score/);
  });
});
