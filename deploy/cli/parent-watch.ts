/**
 * A pop process started by another (the demo's actors and coordinator, the e2e tests' processes)
 * ends when the process that started it is gone, however that one ended: a SIGKILL gives it no
 * chance to stop its children, and Linux's parent-death signal is not reachable from Node. The
 * parent names itself in POP_PARENT_PID; the child polls its own parent pid, which the kernel
 * changes when the parent dies (the child is re-parented to init or a subreaper, even while the
 * dead parent is still a zombie), and then sends itself SIGTERM: it stops through its usual
 * shutdown path (leave the panel, hand unfinished work back), or at once when it has none.
 */

/** The environment variable a parent sets to the pid its pop children should watch. */
export const PARENT_PID_ENV = "POP_PARENT_PID";

/** How often a child looks at its parent pid. */
const POLL_MS = 1_000;

/** Environment entries that make a pop child started by this process stop when it is gone. */
export function parentWatchEnv(): Record<string, string> {
  return { [PARENT_PID_ENV]: String(process.pid) };
}

/**
 * Starts watching the parent named by POP_PARENT_PID (nothing when it is unset). The variable
 * is removed from this process's environment so that a command this process runs (an evaluation
 * harness, a trainer: children of this process, not of that parent) does not watch the wrong pid.
 */
export function watchParent(pollMs = POLL_MS): void {
  const raw = process.env[PARENT_PID_ENV];
  delete process.env[PARENT_PID_ENV];
  const parent = Number(raw);
  if (!raw || !Number.isInteger(parent) || parent <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.stderr.write(`pop: the process that started this one (pid ${parent}) is gone; stopping\n`);
    process.kill(process.pid, "SIGTERM");
  }, pollMs);
  // The watch alone never keeps a process alive that has nothing else to do.
  timer.unref();
}
