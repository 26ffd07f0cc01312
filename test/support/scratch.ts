/** Temporary directories for tests: made in one place, removed unless a post-mortem wants them. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A new directory under the system's temporary directory, its name starting with `prefix`. */
export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Removes a scratch directory; POP_KEEP_TEST_DIRS=1 keeps it (servers' and processes' logs) for a post-mortem. */
export function removeScratch(dir: string): void {
  if (!process.env.POP_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
}
