// Guards a process that is not ours to change (the demo's nats-server) so that it does not
// outlive the process that started both: usage `node guard.mjs PID PARENT_PID [GRACE_MS]`,
// spawned by PARENT_PID. When the guard's parent is gone (its parent pid is no longer PARENT_PID:
// the kernel re-parents it, even after a SIGKILL), PID gets SIGTERM, and SIGKILL after GRACE_MS
// (default 10 s); the guard exits as soon as PID is gone.
// Plain JavaScript so that it starts in a few tens of milliseconds, without the TypeScript loader.
const pid = Number(process.argv[2]);
// Named rather than read from process.ppid at start: a parent that died before this line ran
// would otherwise go unnoticed.
const parent = Number(process.argv[3]);
const graceMs = Number(process.argv[4] ?? 10_000);

function alive(p) {
  try {
    process.kill(p, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

function signal(p, name) {
  try {
    process.kill(p, name);
  } catch {
    // already gone
  }
}

if (![pid, parent].every((p) => Number.isInteger(p) && p > 1)) {
  process.stderr.write(`guard: usage: node guard.mjs PID PARENT_PID [GRACE_MS]\n`);
  process.exit(2);
}

// A terminal's Ctrl-C reaches the guard too (it shares its parent's process group): that is the
// parent's to handle, and the guard must keep watching while the parent stops.
process.on("SIGINT", () => {});

const watch = setInterval(() => {
  if (!alive(pid)) process.exit(0);
  if (process.ppid === parent) return;
  clearInterval(watch);
  signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  setInterval(() => {
    if (!alive(pid)) process.exit(0);
    if (Date.now() > deadline) {
      signal(pid, "SIGKILL");
      process.exit(0);
    }
  }, 100);
}, 1_000);
