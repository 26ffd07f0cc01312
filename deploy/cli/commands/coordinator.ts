/** `pop coordinator`: run (or resume) an experiment's coordinator. */
import { readFileSync } from "node:fs";
import { Coordinator } from "../../../coordinator/coordinator.ts";
import { ExperimentConfig, PROTOCOL_VERSION } from "../../../protocol/mod.ts";
import { UsageError, type Flags } from "../args.ts";
import { unknownConfigKeys } from "../../ops/experiment.ts";
import { closeNats, connectNats, onShutdown } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { createLogger } from "../log.ts";

export const coordinatorHelp = `pop coordinator [options]

Runs the coordinator of an experiment: opens iterations, feeds prompts, mean-votes preference
pairs, waits for training and advances. Restart it at any time; it resumes from JetStream.

  --experiment NAME    experiment                                           default: demo
  --config FILE        experiment config (JSON) used if none is stored yet;
                       see deploy/ops/experiment.example.json (the prompt pool must be loaded)
  --log-format F       pretty or json                                        default: pretty

${NATS_OPTIONS_HELP}`;

export async function runCoordinator(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment") ?? "demo";
  const configFile = flags.string("config");
  const nats = flags.nats();
  const server = nats.servers;
  const format = flags.logFormat();
  flags.rejectUnknown();
  let config: ExperimentConfig | undefined;
  if (configFile) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(configFile, "utf8"));
    } catch (error) {
      throw new UsageError(`cannot read --config ${configFile}: ${(error as Error).message}`, coordinatorHelp);
    }
    const unknown = unknownConfigKeys(raw);
    if (unknown.length)
      throw new UsageError(
        `--config ${configFile}: unknown setting${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `'${k}'`).join(", ")} (see deploy/ops/experiment.example.json for the known ones)`,
        coordinatorHelp,
      );
    // Users write only what matters; the envelope fields and empty sections are filled in.
    const filled = {
      v: PROTOCOL_VERSION,
      type: "experiment",
      experiment,
      createdAt: Date.now(),
      voting: {},
      training: {},
      judging: {},
      deadlines: {},
      heartbeat: {},
      ...(raw as object),
    };
    const parsed = ExperimentConfig.safeParse(filled);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(config)"}: ${i.message}`).join("\n");
      throw new UsageError(`--config ${configFile} is not a valid experiment config:\n${problems}`, coordinatorHelp);
    }
    config = parsed.data;
  }
  let coordinator: Coordinator | undefined;
  const log = createLogger("coordinator", { format, context: { experiment }, iteration: () => coordinator?.iteration });
  const nc = await connectNats(nats, "pop-coordinator", log);
  const abort = new AbortController();
  onShutdown(async () => {
    abort.abort();
    await closeNats(nc);
  });
  coordinator = new Coordinator({ nc, experiment, log, config });
  await coordinator.run(abort.signal);
  await closeNats(nc);
}
