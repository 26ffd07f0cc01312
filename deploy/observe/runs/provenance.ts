/**
 * Where a report came from: the commit of the code that wrote it, when, and the versions of what
 * ran (node, nats-server, this package, the wire protocol), so that two runs can be told apart
 * when they are compared.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PROTOCOL_VERSION } from "../../../protocol/mod.ts";

/** The versions a report records; a version not known is null. */
export interface Versions {
  node: string;
  natsServer: string | null;
  /** package.json's version of this project. */
  package: string | null;
  protocol: number;
}

/** What a report says about its own making. */
export interface Provenance {
  /** `git rev-parse HEAD` of the checkout, null outside a git checkout (or without git). */
  commit: string | null;
  /** When the report was written (ISO 8601). */
  date: string;
  versions: Versions;
}

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

function gitCommit(): string | null {
  try {
    const out = execFileSync("git", ["rev-parse", "HEAD"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5_000 }).trim();
    return /^[0-9a-f]{40,64}$/.test(out) ? out : null;
  } catch {
    return null; // not a checkout, or no git: the report is still worth writing
  }
}

function packageVersion(): string | null {
  try {
    const v = (JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version?: unknown }).version;
    return typeof v === "string" ? v : null;
  } catch {
    return null;
  }
}

/** The provenance of a report written now; `natsServer`: the version the server announced, where known. */
export function provenance(natsServer?: string): Provenance {
  return {
    commit: gitCommit(),
    date: new Date().toISOString(),
    versions: { node: process.versions.node, natsServer: natsServer ?? null, package: packageVersion(), protocol: PROTOCOL_VERSION },
  };
}
