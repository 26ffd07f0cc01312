/**
 * Every command of the README runs as written, from a copy of the repository's tracked files (a
 * fresh clone: nothing untracked, no vision tower, no runs), in README order, against a private
 * nats-server. The only changes are ports and /tmp (test/support/readme-commands.ts, `localize`).
 *
 * Each README command is in `STEPS`, either run (with what the README says it does checked) or
 * skipped with its reason; a command in neither fails the test, as does a step the README no
 * longer has, so the README and this test cannot drift apart. Long-running commands (the server,
 * the coordinator, actors, `pop serve`, watch, the dashboard) are started, checked and ended by
 * their PID (their process group).
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createConnection } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localize, readmeCommands, type Locale } from "../support/readme-commands.ts";
import { ShellRunner, type Started } from "../support/shell-runner.ts";
import { freePort } from "../support/ports.ts";
import { removeScratch, scratchDir } from "../support/scratch.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** Starting a pop process (npm, tsx, tfjs) takes seconds, more on a loaded machine. */
const START_MS = 60_000;
/** The tiny members the recipe starts. */
const TINY = ["ocrdumb", "countless", "mine"];
const DEBUG = { POP_LOG_LEVEL: "debug" };

interface Context {
  sh: ShellRunner;
  clone: string;
  at: Locale;
  /** Processes a later step checks. */
  procs: Map<string, Started>;
}

/** How one README command is run and checked: `cmd` is the command as localized. */
type Step = { skip: string } | { run: (cmd: string, c: Context) => Promise<void> };

async function runs(c: Context, cmd: string, ms = START_MS): Promise<string> {
  const r = await c.sh.run(cmd, ms);
  expect(r.code, `${cmd}\n${r.output.slice(-3000)}`).toBe(0);
  return r.output;
}

async function portOpen(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: "127.0.0.1" }, () => (s.end(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${port} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a member and waits until it has joined the experiment. */
async function joins(c: Context, cmd: string, name: string, env: Record<string, string> = {}): Promise<void> {
  const p = c.sh.start(cmd, env);
  c.procs.set(name, p);
  await p.waitFor(/joined/, START_MS);
}

const STEPS: Record<string, Step> = {
  "npm run demo": { skip: "test/e2e/demo.test.ts runs the demo and checks what it prints and writes (minutes)" },
  "npm test": { skip: "the suite this test is part of" },

  // Join your own model
  "nats-server -js": {
    run: async (cmd, c) => {
      c.procs.set("nats", c.sh.start(cmd));
      await portOpen(c.at.natsPort, 10_000);
    },
  },
  "npm run pop -- pool --seed 7 --count 768": {
    run: async (cmd, c) => expect(await runs(c, cmd)).toMatch(/768/),
  },
  "npm run pop -- coordinator --experiment exp1 --config deploy/ops/experiment.example.json": {
    run: async (cmd, c) => {
      const p = c.sh.start(cmd);
      c.procs.set("coordinator", p);
      await p.waitFor(/exp1/, START_MS);
    },
  },
  // the tiny members log at debug, which says when they answer
  "npm run pop -- actor --peer ocrdumb --experiment exp1": { run: (cmd, c) => joins(c, cmd, "ocrdumb", DEBUG) },
  "npm run pop -- actor --peer countless --experiment exp1": { run: (cmd, c) => joins(c, cmd, "countless", DEBUG) },
  "npm run pop -- pretrain --peer mine --gaps ocr --out my.bin": {
    // The recipe takes minutes (a fresh clone has no vision tower yet): as written it is checked to
    // start training and make progress, then ended; the same command with its step counts cut
    // (the only rewrite here that is not a port or a path) makes the my.bin the next command loads.
    // Both at once: the stand-in keeps its 2-step tower in a file of its own, so the run as written
    // finds none and trains the tower.
    run: async (cmd, c) => {
      const asWritten = c.sh.start(cmd);
      const standIn = runs(c, `${cmd} --encoder-steps 2 --steps 2 --refine-steps 0 --encoder ${c.at.tmp}/tower.bin`);
      await asWritten.waitFor(/vision tower.*\d+\/1200 steps/, START_MS);
      await asWritten.stop();
      expect(await standIn).toMatch(/written to my\.bin/);
      expect(existsSync(join(c.clone, "my.bin"))).toBe(true);
    },
  },
  "npm run pop -- actor --peer mine --checkpoint my.bin --experiment exp1": {
    run: async (cmd, c) => {
      await joins(c, cmd, "mine", DEBUG);
      // the third member: the example config's minPeers is met, the coordinator opens iteration 1
      // and the members answer its prompts
      await c.procs.get("coordinator")!.waitFor(/iteration opened/, START_MS);
      await Promise.any(TINY.map((m) => c.procs.get(m)!.waitFor(/answered prompts/, START_MS)));
      // Enough for what follows (it reads what is stored): ended now, they would keep both cores
      // busy for minutes and slow every later step.
      await Promise.all(TINY.map((m) => c.procs.get(m)!.stop()));
    },
  },

  // A served model: written for a GPU host
  "vllm serve llava-hf/llava-1.5-7b-hf --served-model-name llava15 --port 8000 --max-logprobs 20 --limit-mm-per-prompt '{\"image\": 4}'": {
    skip: "needs vLLM on a GPU host (deploy/ops/gpu/README.md)",
  },
  "npm run pop -- plan --config deploy/ops/experiment.served.example.json --member llava15=http://127.0.0.1:8000/v1": {
    skip: "calibrates against the vLLM server above; test/deploy/plan.test.ts runs pop plan against a stand-in",
  },
  "npm run pop -- pool --from prompts.jsonl --name my-prompts --server nats://hub:4222": {
    skip: "the reader's prompts and hub host; test/deploy/pool-file.test.ts runs pop pool --from",
  },
  "npm run pop -- coordinator --experiment exp1 --config deploy/ops/experiment.served.example.json --server nats://hub:4222": {
    skip: "a hub host and the served member above; the coordinator's recipe on this machine runs above",
  },
  "npm run pop -- actor --peer llava15 --experiment exp1 --server nats://hub:4222 --backend openai --base-url http://127.0.0.1:8000/v1 --model llava15 --bench my-bench.jsonl":
    { skip: "needs the vLLM server above; the same actor against pop serve runs below" },

  // Try it on this machine: a served member joins exp1
  "npm run pop -- serve --peer ocrdumb --port 8001": {
    run: async (cmd, c) => {
      const p = c.sh.start(cmd);
      c.procs.set("serve", p);
      await p.waitFor(/serving ocrdumb at http:\/\/\S+\/v1/, START_MS);
    },
  },
  "npm run pop -- tiny-bench --out /tmp/tiny-bench --items 20": {
    run: async (cmd, c) => {
      await runs(c, cmd);
      expect(
        readFileSync(join(c.at.tmp, "tiny-bench", "bench.jsonl"), "utf8")
          .trim()
          .split("\n").length,
      ).toBeGreaterThanOrEqual(20);
    },
  },
  "npm run pop -- actor --peer ocrserved --backend openai --base-url http://127.0.0.1:8001/v1 --model ocrdumb --bench /tmp/tiny-bench/bench.jsonl --experiment exp1 --trainer-cmd 'npm run -s pop -- train --peer ocrdumb'":
    {
      // It joins and benchmarks itself through pop serve (its first evaluation); it answers from the
      // next iteration and trains when that closes, which this test does not wait for
      // (test/e2e/served-panel.test.ts and served-training.test.ts run served members through
      // iterations). It is left running for `watch --lines` below.
      run: async (cmd, c) => {
        const p = c.sh.start(cmd);
        c.procs.set("ocrserved", p);
        await p.waitFor(/joined/, START_MS);
        const served = async () => /^pop_serve_requests_total\{[^}]*\} [1-9]/m.test(await (await fetch(`http://127.0.0.1:${c.at.ports[8001]}/metrics`)).text());
        for (const until = Date.now() + START_MS; !(await served());) {
          expect(Date.now() < until, `pop serve answered no request of ocrserved:\n${p.output.slice(-3000)}`).toBe(true);
          await new Promise((r) => setTimeout(r, 500));
        }
      },
    },

  // Several sites: the files; running them needs the named hosts
  "npm run pop -- creds --experiment exp1 --peers qwen,llava,idefics --out creds --observer": {
    run: async (cmd, c) => {
      await runs(c, cmd);
      for (const f of ["qwen.nk", "llava.nk", "idefics.nk", "observer.nk", "auth.conf"]) expect(existsSync(join(c.clone, "creds", f)), f).toBe(true);
    },
  },
  "npm run pop -- site --layout cluster --sites lab1,lab2,lab3 --hosts lab1=lab1.example.org,lab2=lab2.example.org,lab3=lab3.example.org --out sites --creds creds":
    {
      run: async (cmd, c) => {
        await runs(c, cmd);
        for (const s of ["lab1", "lab2", "lab3"]) {
          expect(existsSync(join(c.clone, "sites", `node-${s}.conf`)), s).toBe(true);
          expect(existsSync(join(c.clone, "sites", `README-${s}.txt`)), s).toBe(true);
        }
      },
    },

  // Watching: exp1 is in its first iteration
  "npm run pop -- watch --experiment exp1": {
    run: async (cmd, c) => {
      const p = c.sh.start(cmd);
      for (const m of ["ocrdumb", "countless", "mine"]) await p.waitFor(new RegExp(m), START_MS);
      await p.stop();
    },
  },
  "npm run pop -- watch --experiment exp1 --lines": {
    // It shows messages as they flow from when it starts: the served member's leaving (Ctrl-C) is one.
    run: async (cmd, c) => {
      const p = c.sh.start(cmd);
      await p.waitFor(/watching pop\.exp1\.>/, START_MS);
      await new Promise((r) => setTimeout(r, 1_000)); // the subscription reaches the server
      await Promise.all([c.procs.get("ocrserved")!.stop(), c.procs.get("serve")!.stop()]);
      await p.waitFor(/peer_left.*ocrserved|ocrserved.*peer_left/, START_MS);
      await p.stop();
    },
  },
  "npm run pop -- dashboard --experiment exp1": {
    run: async (cmd, c) => {
      const p = c.sh.start(cmd);
      await p.waitFor(new RegExp(`127\\.0\\.0\\.1:${c.at.dashboardPort}`), START_MS);
      const page = await fetch(`http://127.0.0.1:${c.at.dashboardPort}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<html/i);
      await p.stop();
    },
  },
  "npm run pop -- report --experiment exp1 --out runs/exp1": {
    run: async (cmd, c) => {
      await runs(c, cmd);
      expect(JSON.parse(readFileSync(join(c.clone, "runs/exp1/report.json"), "utf8")).schemaVersion).toBe(2);
    },
  },
  "npm run pop -- compare runs/exp1 runs/exp2 --out cmp.html": {
    // one run is all this test has: a copy of it stands in for the second
    run: async (cmd, c) => {
      cpSync(join(c.clone, "runs/exp1"), join(c.clone, "runs/exp2"), { recursive: true });
      await runs(c, cmd);
      expect(readFileSync(join(c.clone, "cmp.html"), "utf8")).toMatch(/<html/i);
    },
  },
  "npm run pop -- revote --experiment exp1 --min-chosen 0.8": {
    run: async (cmd, c) => void (await runs(c, cmd)),
  },
};

/** The repository's tracked files (as in the working tree) in a new folder, node_modules linked. */
function freshClone(dir: string): void {
  const files = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const f of files) {
    const from = join(ROOT, f);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(from, join(dir, f));
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
}

const commands = readmeCommands(readFileSync(join(ROOT, "README.md"), "utf8"));

describe("the README's commands", () => {
  it("are each run or skipped with a reason by this test, and it lists no command the README lacks", () => {
    const listed = new Set(Object.keys(STEPS));
    const written = new Set(commands.map((c) => c.text));
    expect(
      commands.filter((c) => !listed.has(c.text)).map((c) => `README.md:${c.line}: ${c.text}`),
      "README commands neither run nor skipped here",
    ).toEqual([]);
    expect(
      [...listed].filter((t) => !written.has(t)),
      "steps for commands the README no longer has",
    ).toEqual([]);
  });

  describe("run as written from a fresh clone", () => {
    let c: Context;
    let dir: string;
    beforeAll(async () => {
      dir = scratchDir("pop-readme-");
      const clone = join(dir, "clone");
      const tmp = join(dir, "tmp");
      mkdirSync(tmp);
      freshClone(clone);
      expect(readdirSync(clone)).toContain("README.md");
      const natsPort = await freePort();
      const at: Locale = { natsPort, ports: { 8001: await freePort() }, dashboardPort: await freePort(), tmp };
      c = { clone, at, procs: new Map(), sh: new ShellRunner(clone, { NATS_URL: `nats://127.0.0.1:${natsPort}`, POP_RESULTS: "none" }) };
    });
    afterAll(async () => {
      await c?.sh.stopAll();
      if (dir) removeScratch(dir);
    });

    for (const command of commands) {
      const step = STEPS[command.text];
      if (!step) continue; // the test above names it
      if ("skip" in step) it.skip(`${command.text} (${step.skip})`, () => {});
      else it(command.text, () => step.run(localize(command.text, c.at), c), 4 * START_MS);
    }
  });
});
