/** The shipped tiny panel: member names and their checkpoint files. */
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const CHECKPOINT_DIR = fileURLToPath(new URL("./checkpoints/", import.meta.url));

/** Names of the shipped members (one checkpoint file each). */
export function shippedMembers(dir = CHECKPOINT_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".bin"))
    .map((f) => f.slice(0, -4))
    .sort();
}

export function shippedCheckpoint(peer: string, dir = CHECKPOINT_DIR): string | undefined {
  const file = join(dir, `${peer}.bin`);
  return existsSync(file) ? file : undefined;
}
