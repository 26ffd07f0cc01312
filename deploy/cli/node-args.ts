/**
 * The node flags a pop command's process starts with, where the command needs its own.
 *
 * The coordinator holds little (the open window's prompts and a bit per prompt; its live heap
 * was 34 MB after a 10,000-prompt iteration and 38 MB after 100,000) but receives and decodes
 * every candidate batch, verdict and pair. At hundreds of prompts a second V8 sized its heap for
 * that churn, not for what it held: up to 4x the live heap in reserved old space plus a 32 MB
 * young generation, and received messages' buffers waiting for collection, so its peak RSS grew
 * with how long an iteration ran (154 MB at 10,000 prompts, 215 MB at 100,000 and 216 MB at a
 * million: npm run bench's memory runs, 2 peers, k = 1). `--optimize-for-size` has V8 keep its
 * heap close to what is live. The flags live in coordinator.node-flags (one per line), which
 * deploy/cli/pop.sh reads too.
 */
import { readFileSync } from "node:fs";

/** The coordinator's flags. */
export const COORDINATOR_NODE_ARGS: readonly string[] = readFileSync(new URL("./coordinator.node-flags", import.meta.url), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter(Boolean);

/**
 * Extra flags for every pop process the demo (or a benchmark) starts, from POP_NODE_ARGS
 * (space-separated), for profiling: node refuses `--cpu-prof` in NODE_OPTIONS, e.g.
 * `POP_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run demo`.
 */
const debugArgs = (): string[] => (process.env.POP_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);

/** The node flags for a pop command line (`args[0]` is the command). */
export function nodeArgsFor(args: readonly string[]): string[] {
  return [...(args[0] === "coordinator" ? COORDINATOR_NODE_ARGS : []), ...debugArgs()];
}
