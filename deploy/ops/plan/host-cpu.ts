/**
 * CPU seconds from /proc (Linux): of the model servers that run on this machine during a
 * calibration (pop plan's shared-host term), of process trees (the plan check's split of the
 * cores), of the machine. Elsewhere every reading is undefined or NaN and the term is left out.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** utime + stime (and those of its children it has reaped) and the parent of a process; undefined once it has gone. */
function stat(pid: number): { ppid: number; cpu: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100 };
  } catch {
    return undefined;
  }
}

/** CPU seconds used so far by each tree rooted at `roots` (a process and its live descendants), by name. */
export function treeCpuSeconds(roots: Record<string, number | undefined>): Record<string, number> {
  const all = new Map<number, { ppid: number; cpu: number }>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const s = stat(pid);
    if (s) all.set(pid, s);
  }
  const children = new Map<number, number[]>();
  for (const [pid, s] of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  const sum = (pid: number): number => (all.get(pid)?.cpu ?? 0) + (children.get(pid) ?? []).reduce((t, c) => t + sum(c), 0);
  return Object.fromEntries(Object.entries(roots).map(([name, pid]) => [name, pid === undefined ? NaN : sum(pid)]));
}

/** CPU seconds the whole machine has been busy (every core, every process), from /proc/stat. */
export function machineBusySeconds(): number {
  let f: number[];
  try {
    f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return NaN;
  }
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100;
}

/**
 * The pid of the process listening on `baseUrl`'s port when its host is this machine (a
 * loopback name or address), from /proc/net/tcp{,6} and the processes' sockets; undefined
 * elsewhere, off Linux, or when the listener is another user's (its sockets cannot be read).
 */
export function localServerPid(baseUrl: string): number | undefined {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return undefined;
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!(host === "localhost" || host === "::1" || /^127\./.test(host) || host === "0.0.0.0")) return undefined;
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; state 0A is LISTEN; field 9 the socket's inode.
      if (f.length > 9 && f[3] === "0A" && parseInt(f[1]!.split(":")[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  if (!inodes.size) return undefined;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
