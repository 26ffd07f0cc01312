/**
 * Served peers learn: three `pop serve` models driven through the openai backend, each training a
 * tiny "adapter" per iteration with `pop train` under the trainer contract, the adapter stored in
 * the object store and hot-loaded into its server. One actor is SIGKILLed while it trains and
 * restarted: its training is neither lost nor done twice. The panel improves as the demo's does.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { JUDGE_TEMPERATURE } from "../../actors/models/tiny/backend.ts";
import { writeTinyBenchmark } from "../../actors/models/tiny/bench-export.ts";
import { DEMO_DEFAULTS } from "../../deploy/demo/defaults.ts";
import { collectRun } from "../../deploy/observe/report/collect.ts";
import { buildReport, formatTable } from "../../deploy/observe/report/report.ts";
import { BUCKETS, readRecord, stateKeys } from "../../protocol/mod.ts";
import { freePort } from "../support/ports.ts";
import { startPanel } from "../support/panel.ts";

const MEMBERS = ["countless", "lostspace", "ocrdumb"];
const PROMPTS = 300;
const CLI = fileURLToPath(new URL("../../deploy/cli/cli.ts", import.meta.url));
const POP = `"${process.execPath}" --import tsx "${CLI}"`;

describe("served peers that train", () => {
  it("store and hot-load their adapters, survive a kill during training, and improve", async () => {
    const { voting, training } = DEMO_DEFAULTS.overrides;
    await using p = await startPanel(
      {
        experiment: "learn",
        iterations: 2,
        promptsPerIteration: PROMPTS,
        k: DEMO_DEFAULTS.k,
        temperature: DEMO_DEFAULTS.temperature,
        poolSeed: 7,
        minPeers: 3,
      },
      { voting, training },
    );
    const bench = writeTinyBenchmark(join(p.dir, "bench"), 50);
    const urls: Record<string, string> = {};
    for (const m of MEMBERS) {
      const port = await freePort();
      // The actors' work dirs, where their backends unpack adapters, all lie under the panel's dir.
      p.spawn(`serve-${m}`, ["serve", "--peer", m, "--port", String(port), "--adapter-dir", p.dir]);
      urls[m] = `http://127.0.0.1:${port}/v1`;
    }
    await p.waitFor(
      "the model servers",
      async () =>
        (
          await Promise.all(
            MEMBERS.map((m) =>
              fetch(`${urls[m]}/models`).then(
                (r) => r.ok,
                () => false,
              ),
            ),
          )
        ).every(Boolean),
      60_000,
    );
    const actorArgs = (m: string) => [
      "--judge-temperature",
      String(JUDGE_TEMPERATURE),
      "--bench",
      bench,
      "--work-dir",
      join(p.dir, `work-${m}`),
      "--trainer-cmd",
      `${POP} train --peer ${m}`,
    ];
    const actors = Object.fromEntries(MEMBERS.map((m) => [m, p.startServedActor(m, urls[m]!, m, actorArgs(m))]));
    p.startCoordinator();

    // Kill ocrdumb's actor while its trainer runs on iteration 1, then start it again.
    const victim = actors.ocrdumb!;
    await p.waitFor("ocrdumb to start training", async () => readFileSync(victim.logFile, "utf8").includes("running the trainer"), 300_000);
    await victim.kill();
    p.startServedActor("ocrdumb", urls.ocrdumb!, "ocrdumb", actorArgs("ocrdumb"));

    await p.waitFor("the experiment to finish", async () => (await p.control()).some((e) => e.event === "experiment_done"), 480_000);
    const control = await p.control();
    for (const m of MEMBERS) {
      // trained exactly once per iteration, whatever happened to its process
      const done = control.filter((e) => e.event === "training_done" && e.peer === m);
      expect(done.map((e) => (e as { iteration: number }).iteration).sort()).toEqual([1, 2]);
      expect(done.every((e) => (e as { result: { steps: number } }).result.steps > 0)).toBe(true);
      // the adapter is in the object store and the server answers with it
      const kv = await new Kvm(p.nc).open(BUCKETS.state);
      const record = (await readRecord(kv, stateKeys.model("learn", m), "model"))!;
      expect(record.iteration).toBe(2);
      expect(record.bytes).toBeGreaterThan(0);
      const listed = (await (await fetch(`${urls[m]}/models`)).json()) as { data: { id: string; parent: string | null }[] };
      expect(listed.data).toContainEqual(expect.objectContaining({ id: `${m}-${record.modelVersion}`, parent: m }));
    }
    // ocrdumb's first iteration was trained again from the base after the kill, not on top of a
    // half-done run, and its second started from the first's adapter
    const settingsOf = (it: number) => JSON.parse(readFileSync(join(p.dir, "work-ocrdumb", "learn", "ocrdumb", `iter-${it}`, "settings.json"), "utf8"));
    expect(settingsOf(1).init_adapter).toBeNull();
    expect(settingsOf(2).init_adapter).toMatch(/adapters\/adapter-[0-9a-f]{16}$/);

    const report = buildReport(await collectRun(p.nc, "learn"));
    console.log(formatTable(report));
    // Each member's training shows in the report as the in-process trainer's does: pop train's
    // step lines became each run's curve in training_done, ending at its last step.
    for (const it of [1, 2])
      for (const m of MEMBERS) {
        const row = report.training?.find((r) => r.iteration === it && r.peer === m);
        expect(row?.curve?.length, `${m}'s training points in iteration ${it}`).toBeGreaterThan(0);
        expect(row!.curve!.at(-1)!.step).toBe(row!.steps);
      }
    // The gaps the panel is built to teach close, as in the demo: each member learns what it lacked
    // from its peers.
    const [first, , last] = report.iterations;
    const taught = [
      ["ocrdumb", "ocr"],
      ["ocrdumb", "existence"],
      ["countless", "colour"],
      ["countless", "count"],
      ["lostspace", "shape"],
      ["lostspace", "spatial"],
    ] as const;
    const gain = taught.reduce((sum, [m, f]) => sum + last!.scores[m]![f]! - first!.scores[m]![f]!, 0) / taught.length;
    expect(gain).toBeGreaterThan(0.05);
    expect(last!.scores.ocrdumb!.ocr! - first!.scores.ocrdumb!.ocr!).toBeGreaterThan(0.15);
  }, 600_000);
});
