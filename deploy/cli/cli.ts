/**
 * `pop`: the command-line entry point. Each subcommand lives in deploy/cli/commands/.
 * Run with `npx tsx deploy/cli/cli.ts <command>` or `npm run pop -- <command>`.
 *
 * package.json's `pop` script starts it as `exec ./deploy/cli/pop.sh`, which execs node with the
 * tsx loader (and the coordinator's node flags, ./node-args.ts): npm runs a script
 * through `sh -c` and forwards SIGTERM/SIGINT only to that shell, which (dash, bash) dies of it
 * without passing it on, so the demo kept running; `exec` makes node the shell's own process.
 * Node itself rather than the tsx binary: tsx relays a signal to its node child but SIGKILLs the
 * child when it does not acknowledge the signal within 30 ms (a busy event loop), which would
 * skip the demo's clean stop.
 */
import { Flags, UsageError } from "./args.ts";
import { watchParent } from "./parent-watch.ts";

/** A command's module is loaded only when it runs: the coordinator need not load the tiny model's TensorFlow.js, say. */
interface Command {
  load: () => Promise<{ help: string; run: (flags: Flags) => Promise<unknown> }>;
  summary: string;
  /** The process keeps running after `run` resolves (actors, the coordinator, servers): it ends on a signal. */
  keepsRunning?: boolean;
  /** The command takes arguments besides its options (`pop compare RUN_A RUN_B`). */
  positionals?: boolean;
}

const COMMANDS: Record<string, Command> = {
  demo: {
    load: async () => {
      const m = await import("../demo/demo.ts");
      return { help: m.demoHelp, run: m.runDemo };
    },
    summary: "run the whole loop locally with the shipped tiny panel (the main job)",
  },
  actor: {
    load: async () => {
      const m = await import("./commands/actor.ts");
      return { help: m.actorHelp, run: m.runActor };
    },
    summary: "start a peer process and join an experiment",
    keepsRunning: true,
  },
  coordinator: {
    load: async () => {
      const m = await import("./commands/coordinator.ts");
      return { help: m.coordinatorHelp, run: m.runCoordinator };
    },
    summary: "run or resume an experiment's coordinator",
    keepsRunning: true,
  },
  pool: {
    load: async () => {
      const m = await import("./commands/pool.ts");
      return { help: m.poolHelp, run: m.runPool };
    },
    summary: "load unlabeled prompts into a server: your JSONL (--from) or the tiny world's",
  },
  revote: {
    load: async () => {
      const m = await import("./commands/revote.ts");
      return { help: m.revoteHelp, run: m.runRevote };
    },
    summary: "recompute a stored run's pairs under other voting rules, no model needed",
  },
  report: {
    load: async () => {
      const m = await import("./commands/report.ts");
      return { help: m.reportHelp, run: m.runReport };
    },
    summary: "write report.json, pairs and report.html for a stored run",
  },
  export: {
    load: async () => {
      const m = await import("./commands/export.ts");
      return { help: m.exportHelp, run: m.runExport };
    },
    summary: "write a stored run's pairs as a dataset: Parquet with images and a card, or JSONL",
  },
  compare: {
    load: async () => {
      const m = await import("./commands/compare.ts");
      return { help: m.compareHelp, run: m.runCompare };
    },
    summary: "put several runs' scores, gains and curves side by side (a table and compare.html)",
    positionals: true,
  },
  watch: {
    load: async () => {
      const m = await import("./commands/watch.ts");
      return { help: m.watchHelp, run: m.runWatch };
    },
    summary: "a live terminal view of an experiment (--lines: one line per message)",
    keepsRunning: true,
  },
  dashboard: {
    load: async () => {
      const m = await import("./commands/dashboard.ts");
      return { help: m.dashboardHelp, run: m.runDashboard };
    },
    summary: "a live web page of an experiment, with a pair browser",
    keepsRunning: true,
  },
  creds: {
    load: async () => {
      const m = await import("./commands/creds.ts");
      return { help: m.credsHelp, run: m.runCreds };
    },
    summary: "make per-identity nkeys and the nats-server permissions that bind them",
  },
  site: {
    load: async () => {
      const m = await import("./commands/site.ts");
      return { help: m.siteHelp, run: m.runSite };
    },
    summary: "write nats-server configs for several sites: a hub with leafnodes, or a stretched cluster",
  },
  serve: {
    load: async () => {
      const m = await import("./commands/serve.ts");
      return { help: m.serveHelp, run: m.runServe };
    },
    summary: "serve a tiny checkpoint behind an OpenAI-compatible HTTP API (like vLLM)",
    keepsRunning: true,
  },
  plan: {
    load: async () => {
      const m = await import("./commands/plan.ts");
      return { help: m.planHelp, run: m.runPlan };
    },
    summary: "calibrate members' servers and project a served run's requests and time",
  },
  train: {
    load: async () => {
      const m = await import("./commands/train.ts");
      return { help: m.trainHelp, run: m.runTrain };
    },
    summary: "train a tiny model on one iteration's pairs (the trainer contract; for pop serve peers)",
  },
  pretrain: {
    load: async () => {
      const m = await import("./commands/pretrain.ts");
      return { help: m.pretrainHelp, run: m.runPretrain };
    },
    summary: "train a tiny checkpoint from its seed: a shipped member's recipe or a new member",
  },
  "tiny-bench": {
    load: async () => {
      const m = await import("./commands/tiny-bench.ts");
      return { help: m.tinyBenchHelp, run: m.runTinyBench };
    },
    summary: "write the tiny world's benchmark suites as a benchmark file for actor --bench",
  },
  "tiny-data": {
    load: async () => {
      const m = await import("./commands/tiny-data.ts");
      return { help: m.tinyDataHelp, run: m.runTinyData };
    },
    summary: "write labelled tiny-world training data (images, questions, answers, judge labels) for another program",
  },
};

const MAIN_HELP = `pop — Panel-of-Peers: vision-language models that answer, judge each other and learn with SimPO over NATS JetStream.

usage: pop <command> [options]        (in this repository: npm run pop -- <command> [options])

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`)
  .join("\n")}

Run 'pop <command> --help' for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(MAIN_HELP + "\n");
    return name ? 0 : 1;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`pop: unknown command '${name}'\n\n${MAIN_HELP}\n`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(command.help + "\n");
    return 0;
  }
  try {
    await command.run(new Flags(rest, command.help, { positionals: entry.positionals }));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`pop ${name}: ${error.message}\n\n${error.help}\n`);
      return 2;
    }
    const e = error as Error & { retryable?: boolean };
    process.stderr.write(`pop ${name}: ${e.name === "Error" ? "" : `${e.name}: `}${e.message}${e.retryable ? "\n(this may succeed if you try again)" : ""}\n`);
    if (process.env.POP_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

// Started by another pop process (the demo, a test): stop when it is gone.
watchParent();
main(process.argv.slice(2)).then((code) => {
  if (code !== 0) process.exit(code);
  if (!COMMANDS[process.argv[2] ?? ""]?.keepsRunning) process.exit(0);
});
