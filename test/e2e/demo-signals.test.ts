/**
 * `npm run demo` as CI and process managers run it, stopped from outside: nothing it started may
 * outlive it. Every process is found through /proc (descendants by parent pid, recorded while
 * the demo runs), so a child that escaped its process group or was re-parented still counts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** One process as /proc shows it; `start` (clock ticks after boot) tells a reused pid apart. */
interface Proc {
  pid: number;
  ppid: number;
  start: string;
  cmd: string;
}

function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields count from its last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest[0] === "Z") return undefined; // exited, waiting to be reaped
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
    return { pid, ppid: Number(rest[1]), start: rest[19]!, cmd };
  } catch {
    return undefined; // gone meanwhile
  }
}

function descendantsOf(root: number): Proc[] {
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProc(Number(d)))
    .filter((p): p is Proc => p !== undefined);
  const children = new Map<number, Proc[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Proc[] = [];
  const queue = [root];
  while (queue.length) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

/** A running `npm run demo`, with every process it started so far. */
class DemoRun {
  readonly child: ChildProcess;
  readonly seen = new Map<number, Proc>();
  output = "";
  private readonly poll: NodeJS.Timeout;

  constructor(readonly dir: string) {
    // Its own process group, as a process manager starts a service; the test signals single pids.
    this.child = spawn("npm", ["run", "demo", "--", "--prompts", "200", "--iterations", "1", "--out", dir, "--timeout-min", "3"], {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.on("data", (d) => (this.output += d));
    this.child.stderr!.on("data", (d) => (this.output += d));
    const record = () => {
      // Always the latest look: a child seen between fork and exec still shows its parent's command line.
      for (const p of descendantsOf(this.child.pid!)) this.seen.set(p.pid, p);
    };
    record();
    this.poll = setInterval(record, 100);
  }

  async waitFor(text: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes(text)) {
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`the demo never printed '${text}':\n${this.output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The demo's node process (the one that runs deploy/cli/cli.ts demo). */
  demoProcess(): Proc {
    const p = [...this.seen.values()].find((q) => q.cmd.includes("deploy/cli/cli.ts demo"));
    if (!p) throw new Error(`no demo process among ${[...this.seen.values()].map((q) => q.cmd).join("\n")}`);
    return p;
  }

  /** What the demo started (and npm itself) that still runs: same pid, same start time. */
  alive(): Proc[] {
    const root = readProc(this.child.pid!);
    return [...this.seen.values(), ...(root ? [root] : [])].filter((p) => readProc(p.pid)?.start === p.start);
  }

  async waitUntilAllGone(timeoutMs: number): Promise<Proc[]> {
    clearInterval(this.poll);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.alive().length === 0) return [];
      await new Promise((r) => setTimeout(r, 200));
    }
    return this.alive();
  }

  /** Ends whatever a failed test left running, by pid (only processes this run started). */
  dispose(): void {
    clearInterval(this.poll);
    for (const p of this.alive()) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const show = (procs: Proc[]) => procs.map((p) => `${p.pid} ${p.cmd}`).join("\n");

// Processes are found through /proc.
describe.skipIf(process.platform !== "linux")("npm run demo stopped from outside", () => {
  let run: DemoRun | undefined;
  afterEach(() => {
    run?.dispose();
    run = undefined;
  });

  it("SIGTERM to npm stops every process the demo started within 15 s", async () => {
    run = new DemoRun(mkdtempSync(join(tmpdir(), "pop-demo-term-")));
    await run.waitFor("members train with SimPO", 75_000);
    const started = [...run.seen.values()];
    expect(started.some((p) => p.cmd.includes("nats-server"))).toBe(true);
    expect(started.filter((p) => p.cmd.includes("cli.ts actor")).length).toBe(3);
    expect(started.some((p) => p.cmd.includes("cli.ts coordinator"))).toBe(true);

    process.kill(run.child.pid!, "SIGTERM");
    const left = await run.waitUntilAllGone(15_000);
    expect(left, `still running 15 s after SIGTERM:\n${show(left)}\n--- output:\n${run.output.slice(-3000)}`).toEqual([]);
    expect(run.output).toContain("interrupted; stopping");
    // The peers left through their own shutdown path, not killed.
    for (const peer of ["countless", "lostspace", "ocrdumb"])
      expect(readFileSync(join(run.dir, "logs", `${peer}.log`), "utf8")).toContain("left the experiment");
  }, 120_000);

  it("SIGKILL of the demo's node process: its children notice and are gone within 15 s", async () => {
    run = new DemoRun(mkdtempSync(join(tmpdir(), "pop-demo-kill-")));
    await run.waitFor("members train with SimPO", 75_000);
    process.kill(run.demoProcess().pid, "SIGKILL");
    const left = await run.waitUntilAllGone(15_000);
    expect(left, `still running 15 s after the demo was killed:\n${show(left)}\n--- output:\n${run.output.slice(-3000)}`).toEqual([]);
    expect(readFileSync(join(run.dir, "logs", "coordinator.log"), "utf8")).toContain("is gone; stopping");
  }, 120_000);
});
