/**
 * Headless Chromium for the browser tests, driven with playwright-core (which downloads no
 * browser): Debian's `chromium` (deploy/ops/setup.sh --tests installs it) or POP_CHROMIUM.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export async function launchChromium(): Promise<Browser> {
  const path = process.env.POP_CHROMIUM || CANDIDATES.find((p) => existsSync(p));
  if (!path)
    throw new Error(
      `no Chromium found (looked for ${CANDIDATES.join(", ")}): run 'bash deploy/ops/setup.sh --tests' (installs Debian's chromium) or set POP_CHROMIUM to a Chromium or Chrome binary`,
    );
  return chromium.launch({ executablePath: path, headless: true });
}

/** Where a test's screenshots go: test-results/<name>/ in the repository (ignored by git). */
export function screenshotDir(name: string): string {
  const dir = join(fileURLToPath(new URL("../../test-results/", import.meta.url)), name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
