/**
 * The coordinator's Prometheus metrics, all defined here on one registry per process (exposed by
 * `pop coordinator --metrics-port`): messages in and out by type, dead letters by reason, whether
 * this process leads, the iteration and its phase, and per iteration its prompts, those published
 * and voted, and the pairs made.
 */
import { Counter, Gauge, Registry } from "prom-client";
import { countProtocolMessages, onProtocolEvent } from "../protocol/mod.ts";
import type { IterationFigures } from "./term.ts";

/** This process's registry: what `/metrics` shows. */
export const coordinatorRegistry = new Registry();
const registers = [coordinatorRegistry];

countProtocolMessages(coordinatorRegistry);

/** Where the figures come from: the coordinator of this process, once it runs. */
let source: (() => { leading: boolean; figures: IterationFigures | undefined }) | undefined;

/** Reads the progress gauges from `read` at each scrape. */
export function watchCoordinator(read: () => { leading: boolean; figures: IterationFigures | undefined }): void {
  source = read;
}

const PHASES = ["collecting", "training", "done"] as const;

new Gauge({
  name: "pop_coordinator_leading",
  help: "1 while this process holds the lease and leads, else 0.",
  registers,
  collect() {
    this.set(source?.().leading ? 1 : 0);
  },
});
new Gauge({
  name: "pop_coordinator_iteration",
  help: "The iteration the leader is at (absent while standing by).",
  registers,
  collect() {
    const f = source?.().figures;
    if (f) this.set(f.iteration);
  },
});
new Gauge({
  name: "pop_coordinator_phase",
  help: "1 for the phase the leader's iteration is in (collecting, training, done), 0 for the others.",
  labelNames: ["phase"] as const,
  registers,
  collect() {
    const f = source?.().figures;
    if (f) for (const p of PHASES) this.set({ phase: p }, f.phase === p ? 1 : 0);
  },
});
// Per iteration, from the coordinator's own messages as they are stored: what it opened with,
// each prompt and pair it published, and what it closed with; and, while it collects, the
// prompts voted so far read from the collector at each scrape.
const prompts = new Gauge({ name: "pop_coordinator_prompts", help: "Prompts in the iteration, by iteration.", labelNames: ["iteration"] as const, registers });
const published = new Counter({
  name: "pop_coordinator_prompts_published_total",
  help: "Prompts this process published, by iteration.",
  labelNames: ["iteration"] as const,
  registers,
});
const pairs = new Counter({
  name: "pop_coordinator_pairs_total",
  help: "Preference pairs this process published, by iteration.",
  labelNames: ["iteration"] as const,
  registers,
});
const voted = new Gauge({
  name: "pop_coordinator_prompts_voted",
  help: "Prompts voted, by iteration (the open one's as it collects; a closed one's as it closed).",
  labelNames: ["iteration"] as const,
  registers,
  collect() {
    const f = source?.().figures;
    if (f?.phase === "collecting" && f.prompts > 0) this.set({ iteration: String(f.iteration) }, f.voted);
  },
});
onProtocolEvent((e) => {
  if (e.kind !== "published" || e.duplicate) return;
  const m = e.message;
  if (m.type === "prompt") published.inc({ iteration: String(m.iteration) });
  else if (m.type === "pair") pairs.inc({ iteration: String(m.iteration) });
  else if (m.type === "control" && m.event === "iteration_opened") prompts.set({ iteration: String(m.iteration) }, m.prompts);
  else if (m.type === "control" && m.event === "iteration_closed") voted.set({ iteration: String(m.iteration) }, m.voted);
});
