import { request } from "node:http";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import type { ImageRef, Member } from "../../protocol/mod.ts";
import { DashboardState } from "../../deploy/observe/dashboard/state.ts";
import { DashboardServer, pairQuery } from "../../deploy/observe/dashboard/server.ts";
import { familyOfQuestion, poolItem, poolPromptId } from "../../actors/models/tiny/world.ts";
import { tinyWorldTruth } from "../../deploy/observe/precision/truth.ts";
import * as msg from "../support/messages.ts";
import { launchChromium, screenshotDir } from "../support/browser.ts";

const T = Date.parse("2026-11-28T12:00:00Z");
const experiment = "demo";
const IMG: ImageRef = { hash: `sha256-${"a".repeat(64)}`, format: "rgb8", width: 2, height: 1 };
const likert = (x: number) => msg.likert(x);
const member = (peer: string, extra: Partial<Member> = {}): Member =>
  msg.member({
    experiment,
    peer,
    instance: `${peer}-1`,
    modelVersion: `${peer}v1`,
    host: "lab1",
    pid: 7,
    joinedAt: T - 60_000,
    heartbeatAt: T - 500,
    ...extra,
  });
const cand = (promptId: string, author: string, texts: string[]) =>
  msg.candidates({ experiment, promptId, question: "what does the text say ?", images: [IMG], author, modelVersion: "m", texts, createdAt: T });
const verdict = (promptId: string, judge: string, author: string, scores: number[]) =>
  msg.verdict({ experiment, promptId, judge, modelVersion: "m", scored: { [author]: scores }, createdAt: T });
const pair = (promptId: string, question: string, chosen: [string, string], rejected: [string, string], margin: number) =>
  msg.pair({
    experiment,
    pairId: `1:${promptId}`,
    promptId,
    question,
    images: [IMG],
    chosen: { candidateId: `${promptId}:${chosen[0]}:0`, author: chosen[0], text: chosen[1], score: 0.95 },
    rejected: { candidateId: `${promptId}:${rejected[0]}:1`, author: rejected[0], text: rejected[1], score: 0.95 - margin },
    margin,
    judges: ["a", "b", "c"],
    createdAt: T,
  });

/** A small recorded run: three members, one prompt answered and judged, two pairs, training under way. */
function recorded(): DashboardState {
  const s = new DashboardState("demo", familyOfQuestion, tinyWorldTruth);
  // Answers arrive before the iteration's opening (the streams are read side by side).
  s.add(cand("p1", "a", ["t e", "t u"]), T);
  s.add(msg.control("iteration_opened", { iteration: 1, peers: ["a", "b", "c"], prompts: 2, at: T - 5000 }, experiment), T);
  s.add(cand("p1", "b", ["t e", "a a"]), T);
  s.add(verdict("p1", "b", "a", [5, 1.5]), T);
  s.add(verdict("p1", "c", "a", [4.5, 1]), T);
  s.add(verdict("p1", "c", "a", [4.5, 1]), T); // redelivered: replaces, does not add
  s.add(pair("p1", "what does the text say ?", ["a", "t e"], ["a", "t u"], 0.8), T);
  s.add(pair("p2", "what color is the square ?", ["b", "red"], ["c", "blue"], 0.76), T);
  s.add(msg.evaluation({ experiment, peer: "a", modelVersion: "m", suites: { ocr: 0.2, colour: 1 }, average: 0.6, items: 10, at: T }), T);
  s.member("demo.a.a-1", member("a", { activity: { doing: "training", iteration: 1, done: 3, total: 10, loss: 1.5, margin: -0.1 } }));
  s.member("demo.a.a-1", member("a", { activity: { doing: "training", iteration: 1, done: 5, total: 10, loss: 1.2, margin: 0.2 } }));
  s.member("demo.b.b-1", member("b", { activity: { doing: "evaluating", iteration: 1, done: 0, total: 0 } }));
  return s;
}

describe("pop dashboard's state", () => {
  it("counts who sends what to whom, keeps training curves and shows each member's state", () => {
    const snap = recorded().snapshot(T);
    const flow = (from: string, to: string, kind: string) => snap.flows.find((f) => f.from === from && f.to === to && f.kind === kind)?.count;
    expect(flow("a", "b", "candidates")).toBe(1);
    expect(flow("a", "c", "candidates")).toBe(1);
    expect(flow("a", "a", "candidates")).toBeUndefined();
    expect(flow("c", "a", "verdicts")).toBe(2);
    expect(flow("coordinator", "b", "prompts")).toBe(2);
    expect(flow("coordinator", "c", "pairs")).toBe(2);
    expect(snap.members.map((m) => [m.peer, m.doing])).toEqual([
      ["a", "training 5/10"],
      ["b", "evaluating"],
    ]);
    expect(snap.gone).toEqual(["c"]);
    expect(snap.iterations[0]).toMatchObject({ iteration: 1, candidates: 2, verdicts: 3, pairs: 2, expected: { candidates: 6, verdicts: 12 } });
    expect(snap.training).toEqual([
      {
        peer: "a",
        iteration: 1,
        points: [
          { step: 3, total: 10, loss: 1.5, margin: -0.1 },
          { step: 5, total: 10, loss: 1.2, margin: 0.2 },
        ],
      },
    ]);
    expect(snap.scores).toEqual([{ iteration: 0, peers: { a: { ocr: 0.2, colour: 1, average: 0.6 } } }]);
  });

  it("shows model cost per iteration, member and phase", () => {
    const s = new DashboardState(experiment);
    s.add(msg.control("iteration_opened", { iteration: 1, peers: ["alice"], prompts: 2, at: T }, experiment), T);
    s.add(msg.trainingDone(1, "alice", { evaluate: msg.usage(1, { modelSeconds: 0.25 }) }, experiment), T);
    expect(s.snapshot(T).cost).toEqual([
      {
        iteration: 1,
        peer: "alice",
        phase: "evaluate",
        requests: 1,
        promptTokens: 10,
        completionTokens: 3,
        seconds: 0.5,
        modelSeconds: 0.25,
        prompts: 2,
        perPrompt: { requests: 0.5, tokens: 6.5, seconds: 0.25 },
      },
    ]);
  });

  it("a finished training's own curve replaces the sampled one", () => {
    const s = recorded();
    s.add(
      msg.control(
        "training_done",
        {
          iteration: 1,
          peer: "a",
          modelVersion: "m2",
          result: {
            steps: 10,
            pairs: 20,
            lossFirst: 2,
            lossLast: 1,
            marginBefore: 0,
            marginAfter: 0.5,
            ms: 900,
            curve: [
              [5, 1.4, 0.1],
              [10, 1, 0.5],
            ],
          },
          at: T,
        },
        experiment,
      ),
      T,
    );
    const snap = s.snapshot(T);
    expect(snap.training[0]!.points).toEqual([
      { step: 5, total: 10, loss: 1.4, margin: 0.1 },
      { step: 10, total: 10, loss: 1, margin: 0.5 },
    ]);
    expect(snap.trained[0]).toMatchObject({ peer: "a", steps: 10, lossLast: 1 });
    expect(snap.trained[0]).not.toHaveProperty("curve");
  });

  it("filters pairs by iteration, member, suite and margin, and opens one with every judge's scores", () => {
    const s = recorded();
    expect(s.queryPairs({}).total).toBe(2);
    expect(s.queryPairs({ suite: "ocr" }).rows.map((r) => r.promptId)).toEqual(["p1"]);
    expect(s.queryPairs({ member: "c" }).rows.map((r) => r.promptId)).toEqual(["p2"]);
    expect(s.queryPairs({ minMargin: 0.78 }).rows.map((r) => r.promptId)).toEqual(["p1"]);
    expect(s.queryPairs({ iteration: 2 }).total).toBe(0);
    const d = s.pair("1:p1")!;
    expect(d.suite).toBe("ocr");
    expect(d.verdicts.chosen).toEqual([
      { judge: "b", author: "a", candidateId: "p1:a:0", likert: likert(5) },
      { judge: "c", author: "a", candidateId: "p1:a:0", likert: likert(4.5) },
    ]);
    expect(d.verdicts.rejected.map((v) => [v.judge, v.likert?.correctness])).toEqual([
      ["b", 1.5],
      ["c", 1],
    ]);
    expect(s.pair("nope")).toBeUndefined();
    expect(s.suiteNames()).toEqual(["colour", "ocr"]);

    // Where the truth is known (tiny pool prompts), each answer is marked and the live precision counts the pair.
    expect(d.chosen.right).toBeUndefined();
    expect(s.snapshot(T).precision).toBeUndefined();
    const item = poolItem(7, 1);
    const tiny = { ...pair(poolPromptId(7, 1), item.question, ["a", item.answer], ["b", "nothing"], 0.5), iteration: 2, pairId: "2:tiny" };
    s.add(tiny, T);
    s.add(tiny, T); // redelivered: counted once
    expect(s.queryPairs({ iteration: 2 }).rows.map((r) => [r.chosen.right, r.rejected.right])).toEqual([[true, false]]);
    expect(s.snapshot(T).precision).toEqual({
      total: { shape: { pairs: 1, chosenRight: 1, rejectedWrong: 1, both: 1 }, all: { pairs: 1, chosenRight: 1, rejectedWrong: 1, both: 1 } },
      iterations: [
        {
          iteration: 2,
          table: { shape: { pairs: 1, chosenRight: 1, rejectedWrong: 1, both: 1 }, all: { pairs: 1, chosenRight: 1, rejectedWrong: 1, both: 1 } },
        },
      ],
    });
  });

  it("reads the browser's filters and says what is wrong with a bad one", () => {
    expect(pairQuery(new URLSearchParams("iteration=2&member=a&minMargin=0.5&limit=10"))).toEqual({ iteration: 2, member: "a", minMargin: 0.5, limit: 10 });
    expect(pairQuery(new URLSearchParams("iteration=-1"))).toMatch(/iteration must be a whole number/);
    expect(pairQuery(new URLSearchParams("minMargin=lots"))).toMatch(/minMargin must be a number, got 'lots'/);
  });
});

describe("pop dashboard's server", () => {
  const fetched: string[] = [];
  const server = new DashboardServer({
    state: recorded(),
    // The object store's bytes: a 2x1 RGB image.
    fetchImage: async (ref) => {
      fetched.push(ref.hash);
      return { format: "rgb8", width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) };
    },
    pushMs: 50,
  });
  let url = "";
  afterAll(() => server.close());

  it("serves the page, the live data (also as server-sent events), pairs and their images; it only reads", async () => {
    ({ url } = await server.listen(0, "127.0.0.1"));
    const page = await fetch(url);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain("Pair browser");
    expect(html).toContain("Pair precision");
    // Nothing from the network (uPlot is inlined; its licence names its home, as text only); the
    // browser test below also watches every request the page makes.
    expect(html).not.toMatch(/(?:src|href|action)\s*=\s*["']?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*["']?(?:https?:)?\/\//i);
    expect(html).toMatch(/uPlot/);
    const state = (await (await fetch(`${url}api/state`)).json()) as {
      members: { peer: string }[];
      charts: { colours: Record<string, string>; dashes: Record<string, number[]>; scores: string };
    };
    expect(state.members.map((m) => m.peer)).toEqual(["a", "b"]);
    // the scores come drawn, with report.html's plotting and palette; the training curves are
    // drawn in the browser with the same colours and dashes
    expect(state.charts.scores).toMatch(/<svg[^>]*aria-label="Benchmark average per member"/);
    expect(state.charts.colours).toEqual({ a: "#1f77b4", b: "#d62728", c: "#2ca02c" });
    expect(state.charts.dashes).toEqual({ a: [], b: [7, 3], c: [2, 3] });

    const events = await fetch(`${url}api/events`);
    expect(events.headers.get("content-type")).toBe("text/event-stream");
    const reader = events.body!.getReader();
    let text = "";
    while ((text.match(/^data: /gm) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
    expect(JSON.parse(text.split("\n")[0]!.slice(6))).toMatchObject({ experiment: "demo", current: 1 });
    await reader.cancel();

    const pairs = (await (await fetch(`${url}api/pairs?suite=ocr`)).json()) as { total: number; rows: { pairId: string }[]; suites: string[] };
    expect(pairs.total).toBe(1);
    expect(pairs.suites).toEqual(["colour", "ocr"]);
    expect((await fetch(`${url}api/pairs?iteration=x`)).status).toBe(400);
    const one = (await (await fetch(`${url}api/pairs/${encodeURIComponent(pairs.rows[0]!.pairId)}`)).json()) as { verdicts: { chosen: unknown[] } };
    expect(one.verdicts.chosen).toHaveLength(2);
    expect((await fetch(`${url}api/pairs/none`)).status).toBe(404);

    const img = await fetch(`${url}api/pairs/${encodeURIComponent("1:p1")}/image/0`);
    expect(img.headers.get("content-type")).toBe("image/png");
    expect([...new Uint8Array(await img.arrayBuffer()).subarray(1, 4)]).toEqual([0x50, 0x4e, 0x47]);
    await fetch(`${url}api/pairs/${encodeURIComponent("1:p2")}/image/0`);
    expect(fetched).toHaveLength(1); // the same image, fetched once
    expect((await fetch(`${url}api/pairs/${encodeURIComponent("1:p1")}/image/3`)).status).toBe(404);
    expect((await fetch(url, { method: "POST" })).status).toBe(405);
  });

  it("answers malformed requests with a 4xx, never a 500", async () => {
    // Raw request targets, exactly as a client may send them (fetch would tidy some up).
    const status = (target: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(url);
        const req = request({ host: u.hostname, port: u.port, path: target, method: "GET" }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on("error", reject);
        req.end();
      });
    for (const target of [
      "/api/pairs/%E0%A4%A",
      "/api/pairs/%",
      "/api/pairs/%zz/image/0",
      "/api/pairs/1%3Ap1%ff/image/0",
      "/api/pairs?iteration=%",
      "/api/pairs?limit=1e999",
      "/api/pairs?offset=-1",
      "/api/pairs/1:p1/image/99999999999999999999999",
      "/no/such/route",
      `/api/pairs/${"x".repeat(20_000)}`,
    ]) {
      const got = await status(target);
      expect(got, target).toBeGreaterThanOrEqual(400);
      expect(got, target).toBeLessThan(500);
    }
  });
});

/** A finished training's curve: loss falling and margin rising over `steps` steps, with noise. */
function trained(peer: string, iteration: number, steps: number, seed: number) {
  const curve: [number, number, number][] = Array.from({ length: steps }, (_, i) => {
    const wobble = Math.sin((i + 1) * (seed + 1.3)) * 0.05;
    return [i + 1, 0.7 - (0.3 * i) / steps + wobble, (0.4 * i) / steps + wobble];
  });
  return msg.control(
    "training_done",
    {
      iteration,
      peer,
      modelVersion: `${peer}-v${iteration}`,
      result: { steps, pairs: 8, lossFirst: curve[0]![1], lossLast: curve.at(-1)![1], marginBefore: 0, marginAfter: 0.4, ms: 1200, curve },
      at: T,
    },
    experiment,
  );
}

/** A panel of 16 members two iterations in: everyone answered and judged, and trained on iteration 1. */
function sixteen(): DashboardState {
  const s = new DashboardState(experiment, familyOfQuestion);
  const peers = Array.from({ length: 16 }, (_, i) => `m${String(i + 1).padStart(2, "0")}`);
  for (const it of [1, 2]) {
    s.add(msg.control("iteration_opened", { iteration: it, peers, prompts: 4, at: T }, experiment), T);
    for (const [i, p] of peers.entries()) {
      s.add(cand(`q${it}`, p, ["t e"]), T);
      s.add(verdict(`q${it}`, p, peers[(i + 1) % 16]!, [4]), T);
      if (it === 1) s.add(trained(p, 1, 40, i), T);
    }
  }
  for (const p of peers) s.member(`demo.${p}.${p}-1`, member(p));
  return s;
}

describe("pop dashboard in a browser", () => {
  let browser: Browser | undefined;
  let server: DashboardServer | undefined;
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });
  const image = async () => ({ format: "rgb8" as const, width: 2, height: 1, data: new Uint8Array([255, 0, 0, 0, 0, 255]) });
  const text = (page: Page, selector: string) => page.locator(selector).first().textContent();
  const range = async (page: Page) => {
    const d = await page
      .locator("[data-testid=training-panel]")
      .first()
      .evaluate((e) => ({ ...(e as unknown as { dataset: Record<string, string> }).dataset }));
    return [Number(d.xMin), Number(d.xMax)];
  };
  const noClipping = async (page: Page, shot: string) => {
    expect(
      await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth),
    ).toBeLessThanOrEqual(1280);
    await page.screenshot({ path: join(screenshotDir("dashboard"), shot), fullPage: true });
  };

  it("shows flows as a matrix at 3 and 16 members, zoomable smoothed training plots, filters as they change, no clipping at 1280 px, and says when it is disconnected", async () => {
    const state = recorded();
    // model cost and a dead letter with a long detail, so every table has rows at 1280 px
    for (const p of ["a", "b", "c"]) state.add(msg.trainingDone(2, p, { answer: msg.usage(40), judge: msg.usage(80), train: msg.usage(2) }, experiment), T);
    state.add(msg.deadLetter({ experiment, detail: `not msgpack: ${"0x9f ".repeat(60)}`, at: T }), T);
    for (const p of ["a", "b", "c"]) for (const it of [1, 2]) state.add(trained(p, it, 30, it * 3 + p.charCodeAt(0)), T);
    server = new DashboardServer({ state, fetchImage: image, pushMs: 200 });
    const { url, port } = await server.listen(0, "127.0.0.1");
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const outside: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => {
      if (!r.url().startsWith(url)) outside.push(r.url());
    });
    await page.goto(url);
    await expect.poll(() => page.locator("[data-testid=connection]").getAttribute("data-state")).toBe("live");

    // ---- the flow matrix at 3 members: rows send, columns receive ----
    await page.locator("[data-testid=flows] td[data-edge='a>b']").waitFor();
    expect(await page.locator("[data-testid=flows] thead th").allTextContents()).toEqual(["from ↓ to →", "coordinator", "a", "b", "c"]);
    expect(await text(page, "[data-testid=flows] td[data-edge='a>b']")).toMatch(/candidates 1/);
    expect(await text(page, "[data-testid=flows] td[data-edge='c>a']")).toMatch(/verdicts 2/);
    expect(await text(page, "[data-testid=flows] td[data-edge='coordinator>b']")).toMatch(/prompts 2/);
    expect(await page.locator("[data-testid=flows] table.compact").count()).toBe(0);

    // ---- training: one uPlot panel per member, values on hover, zoom and reset ----
    const panels = page.locator("[data-testid=training-panel]");
    await expect.poll(() => panels.count()).toBe(3);
    expect(await page.locator("[data-testid=training-panel] canvas").count()).toBeGreaterThanOrEqual(3);
    const over = page.locator("[data-testid=training-panel] .u-over").first();
    await over.scrollIntoViewIfNeeded();
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await expect
      .poll(async () => (await panels.first().locator(".u-legend .u-series .u-value").allTextContents()).join(" "))
      .toMatch(/^\d+ \d+\.\d{4} \d+\.\d{4}$/); // the step, then iteration 1's and 2's smoothed loss
    const full = await range(page);
    expect(full).toEqual([1, 30]);
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 5 });
    await page.mouse.up();
    await expect.poll(() => range(page)).not.toEqual(full);
    const [zMin, zMax] = await range(page);
    expect(zMin).toBeGreaterThan(full[0]!);
    expect(zMax).toBeLessThan(full[1]!);
    // a live update keeps the zoom
    await page.waitForTimeout(600);
    expect(await range(page)).toEqual([zMin, zMax]);
    await page.mouse.dblclick(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await expect.poll(() => range(page)).toEqual(full);
    // per iteration instead: one panel per iteration, a line per member
    await page.selectOption("#t-by", "iteration");
    await expect.poll(() => panels.evaluateAll((ps) => ps.map((p) => p.getAttribute("data-panel")))).toEqual(["iteration 1", "iteration 2"]);
    await page.selectOption("#t-metric", "margin");
    await page.locator("#t-smooth").fill("0");
    await expect.poll(() => text(page, "[data-testid=training-panel] .u-title")).toBe("iteration 1");

    // ---- the pair browser: a filter applies as it changes, without submitting ----
    await expect.poll(() => text(page, "[data-testid=pair-count]")).toMatch(/^2 pairs match/);
    await page.selectOption("#f-suite", "ocr");
    await expect.poll(() => text(page, "[data-testid=pair-count]")).toMatch(/^1 pairs match/);
    expect(await page.locator("[data-testid=pair-row]").count()).toBe(1);
    await page.selectOption("#f-suite", "");
    await page.locator("#f-min").fill("0.78");
    await expect.poll(() => page.locator("[data-testid=pair-row]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-pair")))).toEqual(["1:p1"]);
    await page.locator("[data-testid=pair-row]").first().click();
    await page.locator("[data-testid=judge-row]").first().waitFor();
    expect(await page.locator("[data-testid=judge-row]").count()).toBe(4);
    // a pair opened before its verdicts reached the dashboard fills in as they arrive
    await page.locator("#f-min").fill("");
    await page.locator("[data-testid=pair-row][data-pair='1:p2']").click();
    await expect.poll(() => text(page, "[data-testid=chosen-text]")).toBe("red");
    expect(await page.locator("[data-testid=judge-row]").count()).toBe(0);
    state.add(verdict("p2", "a", "b", [4.5]), T);
    state.add(verdict("p2", "a", "c", [1, 1.5]), T);
    await expect.poll(() => page.locator("[data-testid=judge-row]").count()).toBe(2);
    await page.locator("[data-testid=pair-row][data-pair='1:p1']").click();
    await expect.poll(() => page.locator("[data-testid=judge-row]").count()).toBe(4);
    await noClipping(page, "dashboard-3-members-1280.png");

    // ---- the server goes: "disconnected" with the time of the last event ----
    await server.close();
    await expect.poll(() => page.locator("[data-testid=connection]").getAttribute("data-state"), { timeout: 15_000 }).toBe("disconnected");
    expect(await text(page, "[data-testid=connection]")).toMatch(/^disconnected · last event \d{1,2}:\d{2}:\d{2}/);

    // ---- back (on the same port), now with 16 members: live again, and the matrix still reads ----
    server = new DashboardServer({ state: sixteen(), fetchImage: image, pushMs: 200 });
    await server.listen(port, "127.0.0.1");
    await expect.poll(() => page.locator("[data-testid=connection]").getAttribute("data-state"), { timeout: 20_000 }).toBe("live");
    await expect.poll(() => page.locator("[data-testid=flows] thead th").count()).toBe(18);
    expect(await page.locator("[data-testid=flows] table.compact").count()).toBe(1);
    await page.locator("[data-testid=flows]").screenshot({ path: join(screenshotDir("dashboard"), "flows-16-members.png") });
    expect(await text(page, "[data-testid=flows] td[data-edge='m01>m02']")).toMatch(/^candidates 2verdicts 2$/);
    expect(await text(page, "[data-testid=flows] td[data-edge='coordinator>m16']")).toMatch(/prompts 8/);
    // per member again: 16 panels
    await page.selectOption("#t-by", "member");
    await expect.poll(() => panels.count()).toBe(16);
    await noClipping(page, "dashboard-16-members-1280.png");

    expect(errors).toEqual([]);
    expect(outside).toEqual([]);
  }, 120_000);
});
