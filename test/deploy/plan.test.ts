/**
 * `pop plan` against real `pop serve` servers (tiny checkpoints behind the OpenAI-compatible
 * API on loopback): the calibration sends exactly the requests a member sends, the projection's
 * counts follow the formula for both judging modes and several judges per author, its times are
 * positive and finite, and unreachable or refusing servers fail with named errors. No timing is
 * asserted.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyPlug } from "../../actors/models/tiny/plug.ts";
import { startOpenAiServer, type OpenAiServer, type ServableBackend } from "../../actors/serve/openai-server.ts";
import { calibrate, type CalibrationOptions, type MemberCalibration, type PlanMember } from "../../deploy/ops/plan/calibrate.ts";
import { PANEL_CPU_PER_CLIENT_CPU, project, sharedHost, type PlanParams } from "../../deploy/ops/plan/project.ts";
import { MemberRefusedError, MemberUnreachableError } from "../../deploy/ops/plan/errors.ts";
import { samplePrompts } from "../../deploy/ops/plan/sample-prompts.ts";

const run = promisify(execFile);
const CLI = "deploy/cli/cli.ts";
const NAMES = ["ocrdumb", "countless", "lostspace"];
const K = 3;
const SAMPLES = 4;

describe("pop plan", () => {
  const backends: ServableBackend[] = [];
  const servers: OpenAiServer[] = [];
  let members: PlanMember[];
  let dir: string;
  const options = async (mode: CalibrationOptions["mode"]): Promise<CalibrationOptions> => ({
    k: K,
    temperature: 1,
    mode,
    prompts: await samplePrompts(SAMPLES),
    concurrency: 16,
    waitMs: 0,
    timeoutMs: 30_000,
  });
  const params = (mode: PlanParams["mode"], judgesPerAuthor: PlanParams["judgesPerAuthor"]): PlanParams => ({
    experiment: "plan-test",
    iterations: 3,
    promptsPerIteration: 50,
    k: K,
    mode,
    judgesPerAuthor,
    selfJudging: false,
  });

  beforeAll(async () => {
    for (const name of NAMES) {
      const b = (await tinyPlug.open({ weights: `actors/models/tiny/checkpoints/${name}.bin` }, { peer: name })) as ServableBackend;
      backends.push(b);
      servers.push(await startOpenAiServer({ backend: b, model: name }));
    }
    members = NAMES.map((name, i) => ({ name, baseUrl: `${servers[i]!.url}/v1`, model: name }));
    dir = mkdtempSync(join(tmpdir(), "pop-plan-"));
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) await s.close();
    for (const b of backends) await b.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const calibrations: Partial<Record<CalibrationOptions["mode"], MemberCalibration[]>> = {};

  for (const mode of ["single", "per-criterion"] as const) {
    it(`calibrates a 3-member panel in ${mode} mode and projects the formula's counts for every m`, async () => {
      const cal = await calibrate(members, await options(mode));
      calibrations[mode] = cal;
      const perCandidate = mode === "single" ? 1 : 5;
      for (const c of cal) {
        // Exactly a member's requests: one per prompt (n = k), one or five per judged candidate
        // (each prompt's distinct answers).
        expect(c.answer).toMatchObject({ units: SAMPLES, requests: SAMPLES });
        const distinct = Object.values(c.answers).reduce((n, a) => n + new Set(a).size, 0);
        expect(c.judge).toMatchObject({ units: distinct, requests: distinct * perCandidate });
        // The pass's wall time is split between the phases.
        expect(c.answer.wallSeconds + c.judge.wallSeconds).toBeCloseTo(c.wallSeconds, 6);
        for (const answers of Object.values(c.answers)) expect(answers).toHaveLength(K);
      }
      for (const [m, applied] of [
        [1, 1],
        [2, 2],
        ["all", 2],
        [5, 2],
      ] as const) {
        const p = project(cal, params(mode, m));
        const P = 50;
        expect(p.judgesPerAuthor).toBe(applied);
        for (const x of p.members) {
          expect(x.perPrompt).toMatchObject({ answerRequests: 1, judgedCandidates: applied * K, judgeRequests: perCandidate * applied * K });
          expect(x.perIteration.answer.requests).toBe(P);
          expect(x.perIteration.judge.requests).toBe(P * perCandidate * applied * K);
          expect(x.run.judge.requests).toBe(3 * P * perCandidate * applied * K);
          // Repeated answers are judged once: never more than the bound, never none.
          expect(x.perPrompt.expectedJudgeRequests).toBeGreaterThan(0);
          expect(x.perPrompt.expectedJudgeRequests).toBeLessThanOrEqual(x.perPrompt.judgeRequests);
          for (const s of [x.perIteration.answer.seconds, x.perIteration.judge.seconds, x.run.seconds]) {
            expect(Number.isFinite(s) && s > 0).toBe(true);
          }
        }
        expect(p.perIteration.answerRequests).toBe(3 * P);
        expect(p.perIteration.judgeRequests).toBe(3 * P * perCandidate * applied * K);
        expect(p.run.judgeRequests).toBe(3 * p.perIteration.judgeRequests);
        expect(Number.isFinite(p.run.seconds) && p.run.seconds > 0).toBe(true);
        expect(p.run.seconds).toBeCloseTo(3 * p.perIteration.seconds, 6);
      }
    }, 60_000);
  }

  it("adds training minutes; the slowest member and its pipeline's fill and drain bound the iteration", () => {
    const cal = calibrations.single!;
    const plain = project(cal, params("single", 1));
    const trained = project(cal, { ...params("single", 1), trainMinutes: 2 });
    const slowest = plain.members.reduce((a, b) => (b.perIteration.seconds > a.perIteration.seconds ? b : a));
    expect(plain.slowest).toBe(slowest.name);
    expect(plain.perIteration.seconds).toBeCloseTo(slowest.perIteration.seconds, 6);
    // These servers listen on loopback in this process: the shared-host term applies to the fill and drain too.
    expect(plain.sharedHost).toBeDefined();
    expect(plain.perIteration.overheadSeconds).toBeCloseTo((slowest.measured.answerLatency + slowest.measured.judgeLatency) * plain.sharedHost!.factor, 6);
    expect(trained.perIteration.seconds).toBeCloseTo(plain.perIteration.seconds + 120, 6);
    // The steady time per prompt scales with the prompts; the fill and drain does not.
    const twice = project(cal, { ...params("single", 1), promptsPerIteration: 100 });
    expect(twice.perIteration.modelSeconds).toBeCloseTo(2 * plain.perIteration.modelSeconds, 6);
    expect(twice.perIteration.overheadSeconds).toBeCloseTo(plain.perIteration.overheadSeconds, 6);
  });

  it("lengthens model work by the panel's CPU only where servers share a busy host", () => {
    const cal = calibrations.single!;
    const withHost = (host: MemberCalibration["host"]) => cal.map((c) => ({ ...c, clientCpuSeconds: 1, host }));
    const reading = { wallSeconds: 10, serverCpuSeconds: 7, localServers: 3, cores: 2 };
    // Servers elsewhere: no term.
    expect(sharedHost(withHost(undefined))).toBeUndefined();
    expect(sharedHost(withHost({ ...reading, localServers: 0, machineBusySeconds: 20 }))).toBeUndefined();
    // A full host of its own: C = 7 + 3 clients, E = 3 x the constant, nothing idle.
    const full = sharedHost(withHost({ ...reading, machineBusySeconds: 20, serverCpuSeconds: 17 }))!;
    expect(full.factor).toBeCloseTo((20 + 3 * PANEL_CPU_PER_CLIENT_CPU) / 20, 6);
    // A full host, half of it other work: the extra processes take half their time from it.
    const shared = sharedHost(withHost({ ...reading, machineBusySeconds: 20 }))!;
    expect(shared.factor).toBeCloseTo(1 + ((3 * PANEL_CPU_PER_CLIENT_CPU) / 10) * 0.5, 6);
    // An idle host (a GPU server, cores to spare): the panel fits in them.
    expect(sharedHost(withHost({ ...reading, serverCpuSeconds: 1, machineBusySeconds: 4 }))!.factor).toBe(1);
    const p = project(withHost({ ...reading, machineBusySeconds: 20 }), params("single", 1));
    const q = project(withHost(undefined), params("single", 1));
    expect(p.perIteration.seconds).toBeCloseTo(q.perIteration.seconds * shared.factor, 6);
  });

  it("runs from the command line: a table, a progress line and --json", async () => {
    const config = join(dir, "experiment.json");
    writeFileSync(
      config,
      JSON.stringify({ iterations: 2, promptsPerIteration: 20, pool: { name: "p" }, sampling: { k: K, temperature: 1 }, judging: { judgesPerAuthor: "all" } }),
    );
    const out = join(dir, "plan.json");
    const args = [
      ...members.flatMap((m) => ["--member", `${m.name}=${m.baseUrl}`]),
      "--samples",
      "2",
      "--judging-mode",
      "per-criterion",
      "--judges-per-author",
      "1",
    ];
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", CLI, "plan", "--config", config, ...args, "--json", out], { encoding: "utf8" });
    expect(stdout).toMatch(/judging: per-criterion mode, judges per author 1/);
    expect(stdout).toMatch(/whole run \(2 x 20 prompts\): 120 answer \+ 1,800 judge requests/);
    expect(stderr).toMatch(/calibrating .*12\/12/);
    const json = JSON.parse(readFileSync(out, "utf8"));
    expect(json.projection.run).toMatchObject({ answerRequests: 120, judgeRequests: 2 * 20 * 3 * 5 * K });
    expect(json.calibration).toHaveLength(3);
  }, 60_000);

  it("names an unreachable server, without a stack trace", async () => {
    const config = join(dir, "experiment.json");
    const failed = await run(
      process.execPath,
      ["--import", "tsx", CLI, "plan", "--config", config, "--member", "gone=http://127.0.0.1:9/v1", "--wait-s", "0"],
      {
        encoding: "utf8",
      },
    ).catch((e: { code: number; stderr: string }) => e);
    expect("code" in failed && failed.code).toBe(1);
    expect(failed.stderr).toMatch(/MemberUnreachableError: member 'gone' \(http:\/\/127\.0\.0\.1:9\/v1, model 'gone'\) cannot be reached/);
    expect(failed.stderr).not.toMatch(/\n\s+at /);
  }, 30_000);

  it("names a server that refuses the requests", async () => {
    // Lists the model, then refuses every chat request as vLLM refuses a prompt over its context length.
    const refusing: Server = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      if (req.url?.endsWith("/models")) return res.end(JSON.stringify({ object: "list", data: [{ id: "m", object: "model" }] }));
      res.statusCode = 400;
      res.end(JSON.stringify({ error: { message: "This model's maximum context length is 8 tokens", type: "BadRequestError" } }));
    });
    await new Promise<void>((r) => refusing.listen(0, "127.0.0.1", r));
    const baseUrl = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/v1`;
    try {
      const error = await calibrate([{ name: "small", baseUrl, model: "m" }], await options("single")).catch((e) => e);
      expect(error).toBeInstanceOf(MemberRefusedError);
      expect(error.message).toMatch(/member 'small'.*refused an answer request.*maximum context length/);
      const missing = await calibrate([{ name: "other", baseUrl, model: "absent" }], await options("single")).catch((e) => e);
      expect(missing).toBeInstanceOf(MemberRefusedError);
      expect(missing.message).toMatch(/does not serve a model named 'absent'/);
      const gone = await calibrate([{ name: "gone", baseUrl: "http://127.0.0.1:9/v1", model: "m" }], await options("single")).catch((e) => e);
      expect(gone).toBeInstanceOf(MemberUnreachableError);
    } finally {
      await new Promise((r) => refusing.close(r));
    }
  }, 30_000);
});
