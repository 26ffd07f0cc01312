/**
 * Where and when a measurement ran: the commit, the machine and its load. A figure without these
 * cannot be compared with another, so every results file (write.ts) starts with them.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, freemem, loadavg, release, totalmem, type as osType } from "node:os";

/** The 1- and 5-minute load averages, as os.loadavg() reads them. */
export interface Load {
  one: number;
  five: number;
}

export function loadNow(): Load {
  const [one = 0, five = 0] = loadavg();
  return { one, five };
}

/**
 * The short commit of the checkout at `root`, with "+dirty" when tracked files have uncommitted
 * changes (untracked files do not count: a worktree's node_modules link is one). "unknown" outside
 * a git checkout (an unpacked tarball).
 */
export function commitOf(root: string): string {
  const git = (...args: string[]) => execFileSync("git", ["-C", root, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const head = git("rev-parse", "--short", "HEAD");
    const dirty = git("status", "--porcelain", "--untracked-files=no") !== "";
    return dirty ? `${head}+dirty` : head;
  } catch {
    return "unknown";
  }
}

/** One line: CPU model and count, memory, OS, Node version. */
export function machineLine(): string {
  const cores = cpus();
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
  return [
    `${cores.length} x ${cores[0]?.model.trim() ?? "unknown CPU"}`,
    `${gib(totalmem())} GiB memory (${gib(freemem())} GiB free at start)`,
    `${osName()} (${osType()} ${release()})`,
    `Node ${process.version}`,
  ].join(", ");
}

/** The distribution's name where /etc/os-release says it, else the kernel's. */
function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync("/etc/os-release", "utf8"));
    if (m?.[1]) return m[1];
  } catch {
    // not Linux, or no os-release: the kernel's name below says enough
  }
  return osType();
}
