/**
 * What judging costs (`npm run bench:cost`): judge requests and tokens per prompt per member for
 * panels of N members, k candidates, each judging mode (single, per-criterion) and m judges per
 * author, counted by the members themselves (each actor's cost meter, in its training_done) while
 * real actors with the openai backend judge through `pop serve`, one per shipped
 * model; and how many of the reference pairs (every judge, per-criterion) the cheaper settings
 * keep, on the shipped three-member panel with the demo's settings.
 *
 *   npm run bench:cost -- [--peers 3,8,16] [--k 4,15] [--prompts 4] [--parts counts,pairs,plan] [--out FILE] [--results DIR]
 *
 * The plan part (./cost/plan-check.ts) runs `pop plan`'s calibration and projection, then the
 * iteration it projects, on served members, and reports both times with the load.
 *
 * Configurations whose judging would take more than --max-requests requests are not run: their
 * row is computed from the formula (m·k per prompt per member, 5× that per criterion) and says so.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scriptOptions } from "../cli/script-flags.ts";
import { JUDGING_MODES, ensureTopology, type PhaseCost } from "../../protocol/mod.ts";
import { connectNats, closeNats } from "../cli/connect.ts";
import { DEMO_DEFAULTS } from "../demo/defaults.ts";
import { experimentConfig, loadTinyPool } from "../ops/experiment.ts";
import { NatsServer } from "../ops/nats-server.ts";
import { ResultsRun, commandLine } from "../observe/results/write.ts";
import { expectedRequests, formulaRequests, type JudgeMode } from "./cost/formula.ts";
import { runPanel, type PanelRun } from "./cost/panel.ts";
import { pairsKept, rejudgeSingle, type Kept } from "./cost/pairs.ts";
import { memberOf, startCostServer } from "./cost/serve.ts";
import { checkPlan, type PlanCheck } from "./cost/plan-check.ts";

const HELP = `npm run bench:cost [-- options]

Judge requests and tokens per prompt per member, counted by real actors (openai backend) against
pop serve (one per shipped model), for each panel size, k, judging mode and judges per author; and the share of the
reference pairs (all judges, per-criterion) that single judging and fewer judges keep.

  --peers A,B          panel sizes N                                   default: 3,8,16
  --k A,B              candidates per member                           default: 4,15
  --modes A,B          judging modes (single, per-criterion)           default: single,per-criterion
  --m A,B              judges per author; "all" = N-1 (numbers of N-1 or more are "all")
                                                                       default: 1,2,3,all
  --prompts N          prompts per measured configuration              default: 4
  --pairs-prompts N    prompts of each pairs-kept run (demo settings; 0: skip)  default: 40
  --pairs-peers A,B    panel sizes of the pairs-kept runs ("" or 0 prompts: none)  default: 3,8
  --max-requests N     a configuration whose judging needs more requests in all is
                       computed from the formula instead of run        default: 100000
  --temperature T      answer sampling temperature                     default: ${DEMO_DEFAULTS.temperature}
  --pool-seed N        seed of the prompt pool                         default: ${DEMO_DEFAULTS.poolSeed}
  --parts LIST         counts (requests and tokens), pairs (pairs kept), plan (pop plan's
                       projection against the run it projects)          default: counts,pairs,plan
  --plan-prompts N     prompts of the plan check's iteration            default: 200
  --plan-samples N     its calibration prompts per member               default: 64
  --plan-k N           its candidates per member                        default: ${DEMO_DEFAULTS.k}
  --out FILE           write the rows (and the plan check) as JSON here
  --results DIR        where the markdown results file goes (none: no file)  default: docs/results`;
const a = scriptOptions("bench:cost", HELP, {
  peers: "3,8,16",
  k: "4,15",
  modes: JUDGING_MODES.join(","),
  m: "1,2,3,all",
  prompts: "4",
  "pairs-prompts": "40",
  "pairs-peers": "3,8",
  "max-requests": "100000",
  parts: "counts,pairs,plan",
  "plan-prompts": "200",
  "plan-samples": "64",
  "plan-k": String(DEMO_DEFAULTS.k),
  temperature: String(DEMO_DEFAULTS.temperature),
  "pool-seed": String(DEMO_DEFAULTS.poolSeed),
  out: undefined,
  results: undefined,
});

const say = (line: string) => process.stderr.write(`[bench:cost] ${line}\n`);
const numbers = (s: string) => s.split(",").map((x) => Number(x.trim()));

/** One row of the JSON and the table. */
export interface CostRowOut {
  peers: number;
  k: number;
  mode: JudgeMode;
  judgesPerAuthor: number | "all";
  /** The shipped defaults: single judging, every judge. */
  default: boolean;
  judgeRequestsPerPromptPerMember: number;
  promptTokensPerPromptPerMember: number | null;
  generatedTokensPerPromptPerMember: number | null;
  /** Share of the reference pairs (all judges, per-criterion) kept identically; null where not measured. */
  pairsKept: number | null;
  source: "measured" | "formula";
  /** m·k (×5 per criterion): the requests when every answer is distinct. */
  formulaRequests: number;
  /** Measured rows: what the members' actual answers call for (repeated answer texts are judged once). */
  expectedRequests?: number;
}

async function main(): Promise<void> {
  const parts = new Set(a.parts.split(",").map((x) => x.trim()));
  for (const part of parts) if (!["counts", "pairs", "plan"].includes(part)) throw new Error(`--parts: unknown part '${part}'`);
  const peersList = parts.has("counts") ? numbers(a.peers) : [];
  const kList = numbers(a.k);
  const modes = a.modes.split(",").map((m) => m.trim()) as JudgeMode[];
  for (const m of modes) if (!(JUDGING_MODES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode '${m}'`);
  const mList = a.m.split(",").map((x) => (x.trim() === "all" ? "all" : Number(x))) as (number | "all")[];
  const prompts = Number(a.prompts);
  const pairsPrompts = Number(a["pairs-prompts"]);
  const pairsPeers = parts.has("pairs") && pairsPrompts > 0 && a["pairs-peers"] ? numbers(a["pairs-peers"]).filter((n) => n >= 2) : [];
  const planPrompts = parts.has("plan") ? Number(a["plan-prompts"]) : 0;
  const maxRequests = Number(a["max-requests"]);
  const temperature = Number(a.temperature);
  const poolSeed = Number(a["pool-seed"]);
  const resultsFile = new ResultsRun("bench-cost", commandLine("bench:cost", process.argv.slice(2)), a.results);

  // Every configuration; a numeric m that leaves nobody out is the "all" row.
  const configs = peersList.flatMap((peers) =>
    kList.flatMap((k) =>
      modes.flatMap((mode) =>
        [...new Set(mList.map((m) => (m === "all" || m >= peers - 1 ? "all" : m)))].map((m) => ({ peers, k, mode, m: m as number | "all" })),
      ),
    ),
  );
  const dir = mkdtempSync(join(tmpdir(), "pop-cost-"));
  const server = await NatsServer.start({ dir: join(dir, "nats"), tiedToThisProcess: true });
  // The shared server of the counts and pairs runs (the plan check starts servers of its own).
  const serve =
    configs.length || pairsPeers.length
      ? await startCostServer(dir).catch(async (error: unknown) => {
          await server.dispose();
          throw error;
        })
      : undefined;
  const models = serve?.models ?? [];
  const t0 = Date.now();
  const rows: CostRowOut[] = [];
  /** Per panel size of the pairs runs, per "mode|m": the pairs kept. */
  const kept = new Map<number, Map<string, Kept>>();
  let plan: PlanCheck | undefined;
  try {
    const nc = await connectNats(server.url, "bench-cost");
    await ensureTopology(nc);
    await loadTinyPool(nc, poolSeed, Math.max(prompts, pairsPrompts, planPrompts), "cost");
    const settingsOf = (experiment: string, peers: number, k: number, n: number, temp: number) => ({
      experiment,
      iterations: 1,
      promptsPerIteration: n,
      k,
      temperature: temp,
      poolSeed,
      minPeers: peers,
    });
    const membersOf = (n: number) => Array.from({ length: n }, (_, i) => memberOf(i, models));
    let total = { requests: 0, promptTokens: 0, completionTokens: 0 };
    for (const [i, c] of configs.entries()) {
      const formula = formulaRequests(c.peers, c.k, c.mode, c.m);
      const row: CostRowOut = {
        peers: c.peers,
        k: c.k,
        mode: c.mode,
        judgesPerAuthor: c.m,
        default: c.mode === "single" && c.m === "all",
        judgeRequestsPerPromptPerMember: formula,
        promptTokensPerPromptPerMember: null,
        generatedTokensPerPromptPerMember: null,
        pairsKept: null,
        source: "formula",
        formulaRequests: formula,
      };
      rows.push(row);
      const label = `N=${c.peers} k=${c.k} ${c.mode} m=${c.m}`;
      if (formula * c.peers * prompts > maxRequests) {
        say(`${i + 1}/${configs.length} ${label}: formula only (${formula * c.peers * prompts} judge requests > --max-requests ${maxRequests})`);
        continue;
      }
      const experiment = `cost-n${c.peers}-k${c.k}-${c.mode}-m${c.m}`;
      const config = experimentConfig(settingsOf(experiment, c.peers, c.k, prompts, temperature), { judging: { mode: c.mode, judgesPerAuthor: c.m } });
      const run = await runPanel({
        nc,
        natsUrl: server.url,
        urlOf: serve!.urlOf,
        config,
        members: membersOf(c.peers),
        timeoutMs: 120_000 + formula * c.peers * prompts * 20,
      });
      const judge = sumJudge(run, c.peers);
      const per = (x: number) => x / (c.peers * prompts);
      row.source = "measured";
      row.judgeRequestsPerPromptPerMember = per(judge.requests);
      row.promptTokensPerPromptPerMember = per(judge.promptTokens);
      row.generatedTokensPerPromptPerMember = per(judge.completionTokens);
      row.expectedRequests = expectedRequests(config, 1, run.peers, run.candidates);
      total = {
        requests: total.requests + judge.requests,
        promptTokens: total.promptTokens + judge.promptTokens,
        completionTokens: total.completionTokens + judge.completionTokens,
      };
      say(
        `${i + 1}/${configs.length} ${label}: ${fmt(row.judgeRequestsPerPromptPerMember)} judge requests/prompt/member (answers call for ${fmt(row.expectedRequests)}, formula ${formula}), ${run.seconds.toFixed(0)} s; totals so far ${total.requests} requests, ${total.promptTokens} prompt + ${total.completionTokens} generated tokens, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      );
    }
    // Formula rows' tokens: the mode's measured tokens per judge request times the formula's requests.
    for (const row of rows.filter((r) => r.source === "formula")) {
      const like = rows.filter((r) => r.source === "measured" && r.mode === row.mode && r.judgeRequestsPerPromptPerMember > 0);
      if (!like.length) continue;
      const reqs = like.reduce((s, r) => s + r.judgeRequestsPerPromptPerMember, 0);
      row.promptTokensPerPromptPerMember = (row.formulaRequests * like.reduce((s, r) => s + r.promptTokensPerPromptPerMember!, 0)) / reqs;
      row.generatedTokensPerPromptPerMember = (row.formulaRequests * like.reduce((s, r) => s + r.generatedTokensPerPromptPerMember!, 0)) / reqs;
    }

    for (const peers of pairsPeers) {
      const k = DEMO_DEFAULTS.k;
      const members = membersOf(peers);
      say(`pairs kept: N=${peers} (${members.map((m) => m.peer).join(", ")}), k=${k}, ${pairsPrompts} prompts, per-criterion, every judge`);
      const config = experimentConfig(settingsOf(`cost-pairs-n${peers}`, peers, k, pairsPrompts, DEMO_DEFAULTS.temperature), {
        voting: DEMO_DEFAULTS.overrides.voting,
        judging: { mode: "per-criterion" },
      });
      const run = await runPanel({ nc, natsUrl: server.url, urlOf: serve!.urlOf, config, members, timeoutMs: 900_000 });
      say(`pairs kept: N=${peers} judged in ${run.seconds.toFixed(0)} s; judging the same candidates again in single mode`);
      const single = await rejudgeSingle(nc, run, serve!.urlOf, (p) => members.find((m) => m.peer === p)!.model);
      const perM = new Map<string, Kept>();
      for (const m of [...Array.from({ length: Math.min(3, peers - 2) }, (_, i) => i + 1), "all" as const]) {
        perM.set(`per-criterion|${m}`, pairsKept(run, config.voting, run.verdicts, m));
        perM.set(`single|${m}`, pairsKept(run, config.voting, single, m));
      }
      kept.set(peers, perM);
      for (const row of rows.filter((r) => r.peers === peers && r.k === k)) row.pairsKept = perM.get(`${row.mode}|${row.judgesPerAuthor}`)?.share ?? null;
    }
    if (planPrompts > 0) {
      const k = Number(a["plan-k"]);
      const config = experimentConfig(settingsOf(`cost-plan-p${planPrompts}-k${k}`, 3, k, planPrompts, DEMO_DEFAULTS.temperature), {
        voting: DEMO_DEFAULTS.overrides.voting,
      });
      plan = await checkPlan({ nc, natsUrl: server.url, dir, config, samples: Number(a["plan-samples"]), timeoutMs: 900_000, say });
      say(
        `plan: ${plan.requests.map((r) => `${r.member} answer ${r.answer} (projected ${r.projectedAnswer}), judge ${r.judge} (projected ${r.projectedJudge.toFixed(0)})`).join("; ")}`,
      );
      say(
        `plan: cores used, calibration / run: ${(["servers", "actors", "coordinator", "rest", "machine"] as const).map((k) => `${k} ${plan!.cpu.calibration[k].toFixed(2)} / ${plan!.cpu.run[k].toFixed(2)}`).join(", ")} (${plan.cpu.calibration.wallSeconds.toFixed(1)} s / ${plan.cpu.run.wallSeconds.toFixed(1)} s); the panel's CPU per client CPU ${plan.panelPerClientCpu.toFixed(2)}, shared-host factor ${plan.hostFactor.toFixed(2)}`,
      );
      say(
        `plan: projected ${plan.projectedSeconds.toFixed(1)} s, actual ${plan.actualSeconds.toFixed(1)} s (voted in ${plan.actualVotedSeconds.toFixed(1)} s): ${(plan.ratio * 100).toFixed(0)}%, load ${plan.load.map((x) => x.toFixed(2)).join(" -> ")}`,
      );
    }
    await closeNats(nc);
  } finally {
    await serve?.stop();
    await server.dispose();
    rmSync(dir, { recursive: true, force: true });
  }

  const table = [
    "| N | k | mode | judges per author | default | judge requests / prompt / member | formula (m·k, ×5 per criterion) | answers call for | prompt tokens | generated tokens | pairs kept | source |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.peers} | ${r.k} | ${r.mode} | ${r.judgesPerAuthor} | ${r.default ? "yes" : ""} | ${fmt(r.judgeRequestsPerPromptPerMember)} | ${r.formulaRequests} | ${r.expectedRequests === undefined ? "-" : fmt(r.expectedRequests)} | ${r.promptTokensPerPromptPerMember === null ? "-" : fmt(r.promptTokensPerPromptPerMember)} | ${r.generatedTokensPerPromptPerMember === null ? "-" : fmt(r.generatedTokensPerPromptPerMember)} | ${r.pairsKept === null ? "-" : `${(r.pairsKept * 100).toFixed(0)}%`} | ${r.source} |`,
    ),
  ].join("\n");
  const notes = [
    `Measured rows: ${prompts} prompts each, every member a PeerActor with the openai backend in this process, one pop serve per shipped model (${models.length}; members beyond them reuse them); counts are the members' own (training_done's cost), judge phase only.`,
    `"answers call for": per judge and prompt, the distinct answer texts of its assigned authors (a text repeated within a prompt is judged once); the tiny models repeat answers often, so measured counts sit below m·k, which is what distinct answers (real models) cost.`,
    `Formula rows were not run (over --max-requests ${maxRequests}); their tokens are the measured tokens per judge request of the same mode times the formula's requests. They assume distinct answers, so they are not comparable with measured rows of the tiny models, whose repeated answers are judged once.`,
  ].join("\n\n");
  const keptLines = kept.size
    ? [
        `k=${DEMO_DEFAULTS.k}, temperature ${DEMO_DEFAULTS.temperature}, ${pairsPrompts} prompts, the demo's voting (chosen >= ${DEMO_DEFAULTS.overrides.voting.minChosen}, margin >= ${DEMO_DEFAULTS.overrides.voting.minMargin}); the first ${models.length} members are the shipped panel, later ones reuse its models. Reference: every judge, per-criterion. Single mode re-judges the same candidates through the same served models (pop serve answers both modes from the same score distributions, so the tiny models give the same scores either way); fewer judges revote the stored verdicts.`,
        "",
        "| N | mode | judges per author | pairs | reference pairs | identical to reference | share kept |",
        "|---|---|---|---|---|---|---|",
        ...[...kept.entries()].flatMap(([peers, perM]) =>
          [...perM.entries()].map(([key, v]) => {
            const [mode, m] = key.split("|");
            return `| ${peers} | ${mode} | ${m} | ${v.pairs} | ${v.reference} | ${v.same} | ${(v.share * 100).toFixed(0)}% |`;
          }),
        ),
        "",
        "The 6-member hostile-judges panel (deploy/bench/hostile-judges.ts) is not reused: its verdicts come from hostile judges by design and need 1000 prompts to mean anything; the N=8 run above covers m = 3.",
      ].join("\n")
    : "not run (--pairs-prompts 0, or --parts without pairs)";
  process.stdout.write(`${table}\n\n${notes}\n\nPairs kept:\n${keptLines}\n`);
  const planLines = plan
    ? [
        `${plan.members.length} members (${plan.members.join(", ")}), each behind a pop serve of its own, a coordinator and one pop actor --backend openai per member, each a process; ${plan.prompts} prompts, k=${plan.k}, ${plan.mode} judging, judges per author ${plan.judgesPerAuthor}; calibration ${a["plan-samples"]} prompts per member after as many unmeasured.`,
        "",
        "| projected (s) | of which fill and drain | actual: opened to done (s) | opened to last vote (s) | projected / actual | load (1 min) before -> after |",
        "|---|---|---|---|---|---|",
        `| ${plan.projectedSeconds.toFixed(1)} | ${plan.projectedOverheadSeconds.toFixed(1)} | ${plan.actualSeconds.toFixed(1)} | ${plan.actualVotedSeconds.toFixed(1)} | ${(plan.ratio * 100).toFixed(0)}% | ${plan.load.map((x) => x.toFixed(1)).join(" -> ")} |`,
        "",
        `Cores used (calibration's measured pass / the run): ${(["servers", "actors", "coordinator", "rest", "machine"] as const).map((k) => `${k} ${plan.cpu.calibration[k].toFixed(2)} / ${plan.cpu.run[k].toFixed(2)}`).join(", ")} (rest: this process and the nats-server; the calibration's clients are under actors). The panel used ${plan.panelPerClientCpu.toFixed(2)}x the calibration clients' CPU per prompt; shared-host factor ${plan.hostFactor.toFixed(2)}.`,
        "",
        "| member | answer requests (projected) | judge requests (projected, distinct) | answer latency: calibration / run | judge latency: calibration / run |",
        "|---|---|---|---|---|",
        ...plan.requests.map(
          (r) =>
            `| ${r.member} | ${r.answer} (${r.projectedAnswer}) | ${r.judge} (${r.projectedJudge.toFixed(0)}) | ${r.calAnswerLatency.toFixed(2)} / ${r.answerLatency.toFixed(2)} s | ${r.calJudgeLatency.toFixed(2)} / ${r.judgeLatency.toFixed(2)} s |`,
        ),
      ].join("\n")
    : "not run (--parts without plan)";
  process.stdout.write(`\npop plan against the run:\n${planLines}\n`);
  if (a.out) writeFileSync(a.out, JSON.stringify({ rows, plan: plan && { ...plan, projection: undefined } }, null, 2) + "\n");
  say(`done in ${((Date.now() - t0) / 60000).toFixed(1)} min`);
  resultsFile.write({
    settings: {
      peers: a.peers,
      k: a.k,
      modes: modes.join(","),
      "judges per author": a.m,
      prompts,
      "pairs prompts": pairsPrompts,
      "pairs panels": pairsPeers.join(",") || "none",
      "max requests": maxRequests,
      parts: [...parts].join(","),
      "plan prompts": planPrompts,
      "plan k": a["plan-k"],
      temperature,
      "pool seed": poolSeed,
    },
    sections: [
      { heading: "Judge requests and tokens per prompt per member", markdown: `${table}\n\n${notes}` },
      { heading: "Pairs kept", markdown: keptLines },
      { heading: "pop plan against the run it projects", markdown: planLines },
    ],
  });
}

/** The judge phase summed over the run's members. */
function sumJudge(run: PanelRun, peers: number): { requests: number; promptTokens: number; completionTokens: number } {
  if (run.costs.size !== peers) throw new Error(`${run.config.experiment}: ${run.costs.size} of ${peers} members reported their cost`);
  const sum = { requests: 0, promptTokens: 0, completionTokens: 0 };
  for (const c of run.costs.values() as Iterable<PhaseCost>) {
    sum.requests += c.judge?.requests ?? 0;
    sum.promptTokens += c.judge?.promptTokens ?? 0;
    sum.completionTokens += c.judge?.completionTokens ?? 0;
  }
  return sum;
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));

main().catch((error) => {
  process.stderr.write(`bench:cost failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
