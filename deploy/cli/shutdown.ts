/**
 * Stopping the command-line tools: on SIGINT/SIGTERM run the clean stop once, within a deadline,
 * and close NATS without hanging on a server that is gone.
 */
import { constants } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { settlesWithin } from "../../protocol/mod.ts";

/**
 * A stop signal repeated sooner than this is the same request arriving twice, not an impatient
 * user: a terminal's Ctrl-C reaches npm and this process (one process group), and npm relays it
 * to its child as well.
 */
export const SIGNAL_REPEAT_MS = 1_500;

/**
 * Longest clean stop before the process exits anyway. Work it has not acked comes back to the
 * stream by itself (nak'ed or past its ack wait), so giving up loses nothing; hanging keeps a
 * process alive that its parent or a supervisor is waiting for.
 */
export const STOP_DEADLINE_MS = Number(process.env.POP_STOP_DEADLINE_MS) || 10_000;

/** The exit status of a process ended by `signal` (128 + its number, as a shell reports it). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 15);
}

/**
 * Calls `first` on the first SIGINT or SIGTERM and `again` on a later one (a user who wants it to
 * stop now); a repeat within {@link SIGNAL_REPEAT_MS} is ignored. Returns a function that stops
 * listening.
 */
export function onStopSignals(first: (signal: NodeJS.Signals) => void, again: (signal: NodeJS.Signals) => void): () => void {
  let firstAt = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (!firstAt) {
      firstAt = Date.now();
      first(signal);
    } else if (Date.now() - firstAt >= SIGNAL_REPEAT_MS) {
      again(signal);
    }
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}

/**
 * Runs `stop` once on SIGINT/SIGTERM, then exits: 0 when it finished, 1 when it failed or took
 * longer than `deadlineMs`. Another signal later exits at once.
 */
export function onShutdown(stop: (signal: string) => Promise<void>, deadlineMs = STOP_DEADLINE_MS): void {
  onStopSignals(
    (signal) => {
      setTimeout(() => {
        process.stderr.write(`the clean stop took longer than ${deadlineMs} ms; exiting without finishing it (unacknowledged work is redelivered)\n`);
        process.exit(1);
      }, deadlineMs);
      stop(signal).then(
        () => process.exit(0),
        (error) => {
          process.stderr.write(`error during shutdown: ${(error as Error).message}\n`);
          process.exit(1);
        },
      );
    },
    (signal) => process.exit(signalExitCode(signal)),
  );
}

/**
 * Drains the connection (flushes what this process published), but gives up after `timeoutMs`
 * and closes it: with the server gone a drain waits forever.
 */
export async function closeNats(nc: NatsConnection, timeoutMs = 2_000): Promise<void> {
  if (nc.isClosed()) return;
  // Called twice (a command's own end and its signal handler) it drains once and both wait.
  if (!nc.isDraining()) {
    // One round trip first: with the server gone, close at once rather than wait out a drain.
    const reachable = await settlesWithin(nc.flush(), 1_000).catch(() => false);
    if (!reachable) return void (await settlesWithin(nc.close(), 1_000).catch(() => undefined));
    if (!nc.isClosed() && !nc.isDraining()) nc.drain().catch(() => undefined);
  }
  if (!(await settlesWithin(nc.closed(), timeoutMs))) await settlesWithin(nc.close(), 1_000).catch(() => undefined);
}
