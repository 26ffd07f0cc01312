/**
 * What the protocol's own code tells a process's metrics as it happens: each message published
 * and admitted, by type, and each dead letter, by reason. The protocol keeps no counters itself
 * and imports no metrics library: a process's metrics (actors/metrics.ts, coordinator/metrics.ts)
 * listen here and count. With no listener, telling costs a set lookup.
 */
import type { DeadLetter, Message } from "./schemas.ts";

/** One thing that happened to a message in this process. */
export type ProtocolEvent =
  /** Stored by the stream (`duplicate`: dropped as one it had already). */
  | { kind: "published"; message: Message; duplicate: boolean }
  /** Read and admitted by a reader of this process (`redelivered`: delivered to it before, unacknowledged). */
  | { kind: "admitted"; message: Message; redelivered: boolean }
  /** Not admitted: stored in the dead-letter stream with this reason. */
  | { kind: "dead_lettered"; reason: DeadLetter["reason"] };

type Listener = (event: ProtocolEvent) => void;
const listeners = new Set<Listener>();

/** Hears every {@link ProtocolEvent} of this process from now on; returns the way to stop. */
export function onProtocolEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** Tells the listeners (the protocol's publish and admit call it); a listener's failure stays its own. */
export function tellProtocolEvent(event: ProtocolEvent): void {
  for (const l of listeners) {
    try {
      l(event);
    } catch {
      // metrics must never break messaging
    }
  }
}
