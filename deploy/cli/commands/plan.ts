/** `pop plan`: calibrate each member's server on requests of the experiment's shape and project the run's requests and time. */
import { writeFileSync } from "node:fs";
import { JUDGING_MODES, type JudgingMode } from "../../../protocol/mod.ts";
import { UsageError, type Flags } from "../args.ts";
import { ExperimentFileError, readExperimentFile } from "../../ops/experiment-file.ts";
import { ProgressReporter } from "../progress.ts";
import { calibrate, type PlanMember } from "../../ops/plan/calibrate.ts";
import { project } from "../../ops/plan/project.ts";
import { renderPlan } from "../../ops/plan/render.ts";
import { samplePrompts } from "../../ops/plan/sample-prompts.ts";

export const planHelp = `pop plan --config FILE --member SPEC [--member SPEC ...] [options]

Projects what a served run costs before you start it. Each member's server gets a short
calibration through the openai backend itself, so the requests are exactly those a member
sends: a few answer requests (n = k and maxTokens from the config) and a few judge requests in
the judging mode, at the concurrency a peer runs at. Then it prints, per member and phase, the
requests and time of one iteration and of the whole run (iterations x promptsPerIteration).

Per prompt and member (N members, m judges per author, "all" = N - 1): answering is 1 request
(n = k); judging is m*k requests in single mode, 5*m*k in per-criterion mode (+k each with
voting.selfJudging). Those are bounds: a peer judges a repeated answer once, so time is projected
from the distinct answers the calibration saw. Members sharing a server add up; the busiest
server bounds an iteration. Training is left out unless --train-minutes gives it.

  --config FILE             the experiment config (what pop coordinator --config takes)
  --member SPEC             NAME=BASE_URL[,model=MODEL], once per member, e.g.
                            a=http://gpu1:8000/v1,model=Qwen/Qwen2-VL-7B-Instruct
                            (model defaults to NAME, as pop serve --peer NAME serves it)
  --prompts FILE            sample prompts from a JSONL file in the pop pool --from format
                            default: the tiny world's generated image+question prompts
  --samples N               sample prompts per member (answered once, one answer judged) default: 16
  --judging-mode MODE       ${JUDGING_MODES.join(" or ")}                              default: the config's
  --judges-per-author M     a number or all                                     default: the config's
  --train-minutes X         training minutes per iteration to add               default: left out
  --concurrency N           requests in flight per server (as the actor's --concurrency) default: 16
  --api-key-env VAR         environment variable that holds the servers' API key
  --wait-s S                how long to wait for a server to come up            default: 10
  --timeout-s S             time limit of one request                           default: 300
  --experiment NAME         experiment name (seeds the judge assignment)        default: demo
  --json FILE               also write the calibration and projection as JSON

Example (three pop serve processes on ports 8001-8003):
  npm run pop -- plan --config deploy/ops/experiment.served.example.json \\
    --member ocrdumb=http://127.0.0.1:8001/v1 --member countless=http://127.0.0.1:8002/v1 \\
    --member lostspace=http://127.0.0.1:8003/v1 --judges-per-author 1 --json plan.json`;

export async function runPlan(flags: Flags): Promise<void> {
  const configFile = flags.string("config");
  const specs = flags.strings("member");
  const promptsFile = flags.string("prompts");
  const samples = flags.int("samples", { min: 1, max: 4096 }) ?? 16;
  const modeFlag = flags.string("judging-mode");
  const perAuthorFlag = flags.string("judges-per-author");
  const trainMinutes = flags.number("train-minutes", { min: 0 });
  const concurrency = flags.int("concurrency", { min: 1, max: 4096 }) ?? 16;
  const keyVar = flags.string("api-key-env");
  const waitS = flags.number("wait-s", { min: 0 }) ?? 10;
  const timeoutS = flags.number("timeout-s", { min: 0.001 }) ?? 300;
  const experiment = flags.string("experiment") ?? "demo";
  const jsonFile = flags.string("json");
  flags.rejectUnknown();

  if (!configFile) throw new UsageError("pass --config FILE (the experiment config)", planHelp);
  if (specs.length === 0) throw new UsageError("pass --member NAME=BASE_URL once per member", planHelp);
  let config;
  try {
    config = readExperimentFile(configFile, experiment);
  } catch (error) {
    if (error instanceof ExperimentFileError) throw new UsageError(error.message, planHelp);
    throw error;
  }
  const members = specs.map(parseMember);
  const dup = members.find((m, i) => members.findIndex((o) => o.name === m.name) !== i);
  if (dup) throw new UsageError(`--member ${dup.name} is given twice; each member needs a name of its own`, planHelp);
  if (modeFlag !== undefined && !(JUDGING_MODES as readonly string[]).includes(modeFlag))
    throw new UsageError(`--judging-mode must be ${JUDGING_MODES.join(" or ")}, got '${modeFlag}'`, planHelp);
  const mode = (modeFlag as JudgingMode | undefined) ?? config.judging.mode;
  const judgesPerAuthor = perAuthorFlag === undefined ? config.judging.judgesPerAuthor : parsePerAuthor(perAuthorFlag);
  const apiKey = keyVar ? process.env[keyVar] : undefined;
  if (keyVar && !apiKey) throw new UsageError(`--api-key-env ${keyVar}: that environment variable is not set`, planHelp);

  const prompts = await samplePrompts(samples, promptsFile);
  const progress = new ProgressReporter("calibrating", members.length * samples * 2, { unit: "units", everyMs: 2000 });
  const base = new Map(members.map((m, i) => [m.name, i * samples * 2]));
  const calibrations = await calibrate(members, {
    k: config.sampling.k,
    temperature: config.sampling.temperature,
    maxTokens: config.sampling.maxTokens,
    mode,
    prompts,
    concurrency,
    apiKey,
    waitMs: waitS * 1000,
    timeoutMs: timeoutS * 1000,
    onProgress: (member, phase, done) =>
      progress.update(
        base.get(member)! + (phase === "judge" ? samples : 0) + done,
        `${member}: ${phase === "answer" ? "answering" : "judging"} ${done}/${samples}`,
      ),
  }).finally(() => progress.finish());
  const projection = project(calibrations, {
    experiment,
    iterations: config.iterations,
    promptsPerIteration: config.promptsPerIteration,
    k: config.sampling.k,
    mode,
    judgesPerAuthor,
    selfJudging: config.voting.selfJudging,
    trainMinutes,
  });
  const context = { samples, promptSource: promptsFile ?? "generated", concurrency, maxTokens: config.sampling.maxTokens ?? 512 };
  if (members.length < config.minPeers)
    process.stdout.write(`note: ${members.length} members, fewer than the config's minPeers (${config.minPeers}): the run would not start\n`);
  process.stdout.write(renderPlan(projection, context) + "\n");
  if (jsonFile) {
    const calibration = calibrations.map(({ answers: _answers, ...c }) => c);
    writeFileSync(jsonFile, JSON.stringify({ context, calibration, projection }, null, 2) + "\n");
    process.stdout.write(`wrote ${jsonFile}\n`);
  }
}

/** `NAME=BASE_URL[,model=MODEL]`. */
function parseMember(spec: string): PlanMember {
  const m = /^([^=,\s]+)=([^,\s]+)(?:,model=(.+))?$/.exec(spec.trim());
  if (!m) throw new UsageError(`--member '${spec}': expected NAME=BASE_URL[,model=MODEL]`, planHelp);
  const [, name, baseUrl, model] = m;
  if (!/^https?:\/\/[^/]+/.test(baseUrl!)) throw new UsageError(`--member ${name}: the base URL must be http:// or https://, got '${baseUrl}'`, planHelp);
  return { name: name!, baseUrl: baseUrl!.replace(/\/+$/, ""), model: model ?? name! };
}

function parsePerAuthor(value: string): number | "all" {
  if (value === "all") return "all";
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--judges-per-author must be a whole number >= 1 or 'all', got '${value}'`, planHelp);
  return n;
}
