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
sends: answer requests (n = k and maxTokens from the config) and judge requests of each
answer's distinct candidates in the judging mode, at the concurrency a peer runs at. Then it
prints, per member and phase, the requests and time of one iteration and of the whole run
(iterations x promptsPerIteration).

Per prompt and member (N members, m judges per author, "all" = N - 1): answering is 1 request
(n = k); judging is m*k requests in single mode, 5*m*k in per-criterion mode (+k each with
voting.selfJudging). Those are bounds: a peer judges a repeated answer once, so time is projected
from the distinct answers the calibration saw. Every member is calibrated at once, each in a
process of its own answering and judging side by side, as the panel runs: members that share a
server or a host slow each other in the figures as in the run. An iteration takes the slowest
member's steady time per prompt times the prompts, plus its pipeline's fill and drain (one
answer's and one judgement's latency, modelled from the measured ones). Training is left out
unless --train-minutes gives it; the coordinator's own work (voting, the hand-off) is not counted.

  --config FILE             the experiment config (what pop coordinator --config takes)
  --member SPEC             NAME=BASE_URL[,model=MODEL], once per member, e.g.
                            a=http://gpu1:8000/v1,model=Qwen/Qwen2-VL-7B-Instruct
                            (model defaults to NAME, as pop serve --peer NAME serves it)
  --prompts FILE            sample prompts from a JSONL file in the pop pool --from format
                            default: the tiny world's generated image+question prompts
  --samples N               sample prompts per member (each answered, its distinct answers judged),
                            after as many others unmeasured to warm the servers up   default: 4 x --concurrency
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

/** Default sample prompts per request in flight. */
const SAMPLES_PER_LANE = 4;

export async function runPlan(flags: Flags): Promise<void> {
  const configFile = flags.string("config");
  const specs = flags.strings("member");
  const promptsFile = flags.string("prompts");
  const samplesFlag = flags.int("samples", { min: 1, max: 4096 });
  const modeFlag = flags.string("judging-mode");
  const perAuthorFlag = flags.countOrAll("judges-per-author");
  const trainMinutes = flags.number("train-minutes", { min: 0 });
  const concurrency = flags.int("concurrency", { min: 1, max: 4096 }) ?? 16;
  // Several prompts per lane, so the pass is mostly steady state rather than its fill and drain.
  const samples = samplesFlag ?? SAMPLES_PER_LANE * concurrency;
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
  const judgesPerAuthor = perAuthorFlag ?? config.judging.judgesPerAuthor;
  const apiKey = keyVar ? process.env[keyVar] : undefined;
  if (keyVar && !apiKey) throw new UsageError(`--api-key-env ${keyVar}: that environment variable is not set`, planHelp);

  // Twice the samples: the first half is measured, the second warms the servers up unmeasured.
  const drawn = await samplePrompts(2 * samples, promptsFile);
  const prompts = drawn.slice(0, samples);
  const progress = new ProgressReporter("calibrating", members.length * samples * 2, { unit: "units", everyMs: 2000 });
  // Members calibrate at once: the line shows the units done over all of them.
  const done = new Map<string, number>();
  const calibrations = await calibrate(members, {
    k: config.sampling.k,
    temperature: config.sampling.temperature,
    maxTokens: config.sampling.maxTokens,
    mode,
    prompts,
    warmPrompts: drawn.slice(samples),
    concurrency,
    apiKey,
    waitMs: waitS * 1000,
    timeoutMs: timeoutS * 1000,
    onProgress: (member, phase, n) => {
      done.set(`${member}/${phase}`, n);
      const total = [...done.values()].reduce((a, b) => a + b, 0);
      progress.update(total, `${member}: ${phase === "answer" ? "answered" : "judged"} ${n}/${samples}`);
    },
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
