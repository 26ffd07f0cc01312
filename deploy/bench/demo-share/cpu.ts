/**
 * CPU time of a process tree, sampled from /proc (Linux): what each of the demo's processes
 * (nats-server, coordinator, peers; worker threads included) and the whole machine spent in a
 * window of wall time. It tells whether the cores were busy during a phase and with what.
 */
import { readFileSync, readdirSync } from "node:fs";

/** One sample: CPU seconds per process (by a name read from its command line) and the machine's busy and total seconds. */
export interface CpuSample {
  at: number;
  byProcess: Record<string, number>;
  /** The same processes' main threads alone (a peer's model runs in a worker thread; GC helpers are threads too). */
  mainThread: Record<string, number>;
  machineBusy: number;
  machineTotal: number;
}

const TICK = 100; // USER_HZ on Linux

function statOf(pid: number, path = `/proc/${pid}/stat`): { ppid: number; cpu: number } | undefined {
  try {
    const s = readFileSync(path, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK };
  } catch {
    return undefined;
  }
}

/** A short name for a process of the demo: the peer's name, "coordinator", "nats-server", else its pid. */
function nameOf(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const peer = argv.indexOf("--peer");
    if (peer >= 0 && argv[peer + 1]) return argv[peer + 1]!;
    if (argv.includes("coordinator")) return "coordinator";
    if (argv.some((a) => a.endsWith("nats-server"))) return "nats-server";
    if (argv.includes("demo")) return "demo";
  } catch {
    // gone
  }
  return String(pid);
}

/** Samples the tree under `root` (root included) every `everyMs` until stopped. */
export class CpuSampler {
  readonly samples: CpuSample[] = [];
  private readonly names = new Map<number, string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly root: number,
    everyMs = 500,
  ) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Cores used on average between the samples nearest `from` and `to` (epoch ms), per process and the machine's. */
  between(
    from: number,
    to: number,
  ): { seconds: number; byProcess: Record<string, number>; mainThread: Record<string, number>; demo: number; machine: number } | undefined {
    const a = this.samples.find((s) => s.at >= from);
    const b = [...this.samples].reverse().find((s) => s.at <= to);
    if (!a || !b || b.at - a.at < 1000) return undefined;
    const seconds = (b.at - a.at) / 1000;
    const byProcess: Record<string, number> = {};
    for (const [name, cpu] of Object.entries(b.byProcess)) byProcess[name] = (cpu - (a.byProcess[name] ?? 0)) / seconds;
    const mainThread: Record<string, number> = {};
    for (const [name, cpu] of Object.entries(b.mainThread)) mainThread[name] = (cpu - (a.mainThread[name] ?? 0)) / seconds;
    const demo = Object.values(byProcess).reduce((x, y) => x + y, 0);
    const machine = ((b.machineBusy - a.machineBusy) / (b.machineTotal - a.machineTotal)) * cpuCount();
    return { seconds, byProcess, mainThread, demo, machine };
  }

  private sample(): void {
    const parent = new Map<number, number>();
    const cpu = new Map<number, number>();
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      const s = statOf(pid);
      if (!s) continue;
      parent.set(pid, s.ppid);
      cpu.set(pid, s.cpu);
    }
    const inTree = (pid: number): boolean => {
      for (let p = pid, hops = 0; p > 1 && hops < 16; p = parent.get(p) ?? 0, hops++) if (p === this.root) return true;
      return false;
    };
    const byProcess: Record<string, number> = {};
    const mainThread: Record<string, number> = {};
    for (const [pid, seconds] of cpu) {
      if (!inTree(pid)) continue;
      let name = this.names.get(pid);
      if (!name) this.names.set(pid, (name = nameOf(pid)));
      byProcess[name] = (byProcess[name] ?? 0) + seconds;
      mainThread[name] = (mainThread[name] ?? 0) + (statOf(pid, `/proc/${pid}/task/${pid}/stat`)?.cpu ?? 0);
    }
    const [busy, total] = machineTicks();
    this.samples.push({ at: Date.now(), byProcess, mainThread, machineBusy: busy, machineTotal: total });
  }
}

function cpuCount(): number {
  return readFileSync("/proc/stat", "utf8")
    .split("\n")
    .filter((l) => /^cpu\d/.test(l)).length;
}

/** The machine's busy and total ticks from /proc/stat's first line (idle and iowait count as not busy). */
function machineTicks(): [number, number] {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((x, y) => x + y, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return [total - idle, total];
}
