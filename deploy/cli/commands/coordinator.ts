/** `pop coordinator`: run (or resume) an experiment's coordinator. */
import { Coordinator } from "../../../coordinator/coordinator.ts";
import type { ExperimentConfig } from "../../../protocol/mod.ts";
import { UsageError, type Flags } from "../args.ts";
import { ExperimentFileError, readExperimentFile } from "../../ops/experiment-file.ts";
import { closeNats, connectNats, onShutdown } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { createLogger } from "../log.ts";
import { coordinatorRegistry, watchCoordinator } from "../../../coordinator/metrics.ts";
import { METRICS_OPTIONS_HELP, metricsOptions, startMetrics } from "../metrics-flags.ts";

export const coordinatorHelp = `pop coordinator [options]

Runs the coordinator of an experiment: opens iterations, feeds prompts, mean-votes preference
pairs, waits for training and advances. Restart it at any time; it resumes from JetStream.

Run it at several sites (same credentials) for a coordinator that survives losing one: one
process holds a lease in the state bucket and leads; the others stand by and take over once
the lease has gone unrenewed for the config's coordination.leaseMs (default 10 s) by their own
clock. Every publication carries the leader's fencing token, and readers refuse a stale one;
a leader that cannot renew stops publishing. pop watch shows who leads (docs/how-it-works.md).

  --experiment NAME    experiment                                           default: demo
  --config FILE        experiment config (JSON) used if none is stored yet;
                       see deploy/ops/experiment.example.json (the prompt pool must be loaded)
  --instance NAME      this process's name in the lease and in pop watch     default: host-pid-random
  --log-format F       pretty or json                                        default: pretty

${NATS_OPTIONS_HELP}

${METRICS_OPTIONS_HELP}
  It shows messages in and out by type, dead letters by reason, whether this process leads, the
  iteration and its phase, and per iteration the prompts published and voted and the pairs made
  (docs/running.md lists them).`;

export async function runCoordinator(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment") ?? "demo";
  const configFile = flags.string("config");
  const instance = flags.string("instance");
  const nats = flags.nats();
  const server = nats.servers;
  const format = flags.logFormat();
  const metricsAt = metricsOptions(flags);
  flags.rejectUnknown();
  let config: ExperimentConfig | undefined;
  if (configFile) {
    try {
      config = readExperimentFile(configFile, experiment);
    } catch (error) {
      if (error instanceof ExperimentFileError) throw new UsageError(error.message, coordinatorHelp);
      throw error;
    }
  }
  let coordinator: Coordinator | undefined;
  const log = createLogger("coordinator", { format, context: { experiment }, iteration: () => coordinator?.iteration });
  const metrics = await startMetrics(coordinatorRegistry, metricsAt, log);
  watchCoordinator(() => ({ leading: coordinator?.leading !== undefined, figures: coordinator?.figures }));
  const nc = await connectNats(nats, "pop-coordinator", log);
  const abort = new AbortController();
  onShutdown(async () => {
    abort.abort();
    await closeNats(nc);
    await metrics?.close();
  });
  coordinator = new Coordinator({ nc, experiment, log, config, instance });
  await coordinator.run(abort.signal);
  await closeNats(nc);
  await metrics?.close();
}
