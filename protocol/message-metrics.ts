/**
 * The protocol's own Prometheus counters, the same in every process that speaks it (the actor's
 * and the coordinator's registries): messages in and out by type, dead letters by reason, as
 * observe.ts reports them.
 */
import { Counter, type Registry } from "prom-client";
import { onProtocolEvent } from "./observe.ts";

/** Defines the protocol's counters on `registry` and keeps them counting. */
export function countProtocolMessages(registry: Registry): void {
  const registers = [registry];
  const messages = new Counter({
    name: "pop_messages_total",
    help: "Protocol messages by direction (out: stored by the stream, duplicates included; in: read and admitted the first time; redelivered: admitted again after a delivery that was not acknowledged) and type.",
    labelNames: ["direction", "type"] as const,
    registers,
  });
  const deadLetters = new Counter({
    name: "pop_dead_letters_total",
    help: "Messages not admitted, stored as dead letters, by reason.",
    labelNames: ["reason"] as const,
    registers,
  });
  onProtocolEvent((e) => {
    if (e.kind === "dead_lettered") deadLetters.inc({ reason: e.reason });
    else messages.inc({ direction: e.kind === "published" ? "out" : e.redelivered ? "redelivered" : "in", type: e.message.type });
  });
}
