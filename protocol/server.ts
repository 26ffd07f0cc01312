/**
 * What the connected NATS server can do. The floor is nats-server 2.9.10 (Debian bookworm); some
 * features exist only later, and older servers silently ignore rather than refuse them, so the
 * topology asks here first and refuses clearly.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { UnsupportedServerError } from "./errors.ts";

export type ServerVersion = [number, number, number];

/** Server features that some options depend on, with the first version that has them. */
export const FEATURE_SINCE = {
  /** A consumer with several filter subjects (2.9 drops the array silently). */
  multipleFilterSubjects: [2, 10, 0],
  /** Stream compression, metadata and subject transforms. */
  streamCompression: [2, 10, 0],
  streamMetadata: [2, 10, 0],
  /** Per-message / per-key TTL (ignored silently before 2.11). */
  perMessageTtl: [2, 11, 0],
} as const satisfies Record<string, ServerVersion>;
export type ServerFeature = keyof typeof FEATURE_SINCE;

/** The oldest server this project supports. */
export const MIN_SERVER: ServerVersion = [2, 9, 0];

export function parseVersion(text: string): ServerVersion {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (!m) throw new UnsupportedServerError(`cannot read the server version '${text}'`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function atLeast(have: ServerVersion, need: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) {
    if (have[i]! !== need[i]!) return have[i]! > need[i]!;
  }
  return true;
}

/** The server version of a live connection. */
export function serverVersion(nc: NatsConnection): ServerVersion {
  const v = nc.info?.version;
  if (!v) throw new UnsupportedServerError("the connection has no server info yet", { retryable: true });
  return parseVersion(v);
}

/** Throws unless the server has every feature named. */
export function requireFeatures(version: ServerVersion, features: ServerFeature[], what: string): void {
  const missing = features.filter((f) => !atLeast(version, FEATURE_SINCE[f]));
  if (missing.length) {
    const need = missing.map((f) => `${f} needs nats-server >= ${FEATURE_SINCE[f].join(".")}`).join("; ");
    throw new UnsupportedServerError(`${what}: the server is ${version.join(".")}, and ${need}. Upgrade the server or drop the option.`);
  }
}

export function checkMinimum(version: ServerVersion): void {
  if (!atLeast(version, MIN_SERVER)) {
    throw new UnsupportedServerError(`nats-server ${version.join(".")} is too old; this project needs >= ${MIN_SERVER.join(".")}`);
  }
}
