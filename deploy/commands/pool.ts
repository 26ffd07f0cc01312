/** `pop pool`: load the tiny world's unlabeled prompt pool into a server's object store. */
import { ensureTopology } from "../../protocol/mod.ts";
import type { Flags } from "../args.ts";
import { connectNats } from "../connect.ts";
import { loadTinyPool, poolName } from "../experiment.ts";

export const poolHelp = `pop pool [options]

Loads unlabeled prompts (image + question, no answer) of the tiny visual world into the object
store, as pool 'tiny-world-<seed>', for experiments whose config names that pool.

  --seed N             pool seed                                              default: 7
  --count N            number of prompts (iterations x prompts per iteration) default: 768
  --server URL         NATS server(s)                                         default: $NATS_URL or nats://127.0.0.1:4222`;

export async function runPool(flags: Flags): Promise<void> {
  const seed = flags.int("seed", { min: 0 }) ?? 7;
  const count = flags.int("count", { min: 1, max: 1_000_000 }) ?? 768;
  const server = flags.server();
  flags.rejectUnknown();
  const nc = await connectNats(server, "pop-pool");
  try {
    await ensureTopology(nc);
    const pool = await loadTinyPool(nc, seed, count, "pool");
    process.stdout.write(`pool '${poolName(seed)}' holds ${pool.prompts.length} prompts on ${server}\n`);
  } finally {
    await nc.close();
  }
}
