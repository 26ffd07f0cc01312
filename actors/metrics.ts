/**
 * The actor's Prometheus metrics, all defined here on one registry per process (exposed by
 * `pop actor --metrics-port`): messages in and out by type, dead letters by reason, model calls
 * and their latency and usage by phase, training steps with the latest loss and margin, and the
 * iteration being worked on. The roles report through the small functions below; the protocol's
 * messages are counted as protocol/observe.ts tells them.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { countProtocolMessages, type Phase } from "../protocol/mod.ts";
import type { TrainStep } from "./models/contract.ts";
import type { Usage } from "./models/usage.ts";

/** This process's registry: what `/metrics` shows. */
export const actorRegistry = new Registry();
const registers = [actorRegistry];

const calls = new Counter({
  name: "pop_model_calls_total",
  help: "Model calls by phase (answer, judge, train, evaluate) and outcome (ok, error).",
  labelNames: ["phase", "outcome"] as const,
  registers,
});
const callSeconds = new Histogram({
  name: "pop_model_call_duration_seconds",
  help: "Wall time of a model call (a batch of prompts, of candidates to judge, a training run, an evaluation), by phase.",
  labelNames: ["phase"] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200],
  registers,
});
const inFlight = new Gauge({
  name: "pop_model_calls_in_flight",
  help: "Model calls running now, by phase: what the actor is doing.",
  labelNames: ["phase"] as const,
  registers,
});
const requests = new Counter({
  name: "pop_model_requests_total",
  help: "Requests sent to the model (HTTP requests to a served one, retries included; calls into an embedded one), by phase.",
  labelNames: ["phase"] as const,
  registers,
});
const tokens = new Counter({
  name: "pop_model_tokens_total",
  help: "Tokens the model read (prompt) and generated (completion), by phase, where the backend counts them.",
  labelNames: ["phase", "kind"] as const,
  registers,
});
const iteration = new Gauge({ name: "pop_actor_iteration", help: "The latest iteration this actor made a model call for.", registers });
const steps = new Counter({ name: "pop_training_steps_total", help: "SimPO optimisation steps taken (as the trainer reports them).", registers });
const loss = new Gauge({ name: "pop_training_loss", help: "The loss of the latest training step.", registers });
const margin = new Gauge({ name: "pop_training_margin", help: "The chosen-minus-rejected log-prob margin of the latest training step.", registers });
const progress = new Gauge({
  name: "pop_training_progress",
  help: "Steps done (kind=done) and planned (kind=total) in the training running now.",
  labelNames: ["kind"] as const,
  registers,
});

countProtocolMessages(actorRegistry);

let latest = -1;
let stepsDone = 0;

/** A model call of `phase` for `it` starts; the returned function ends it with what it cost. */
export function modelCallStarted(it: number, phase: Phase): (usage: Usage, ok: boolean) => void {
  const t0 = performance.now();
  if (it > latest) iteration.set((latest = it));
  inFlight.inc({ phase });
  return (usage, ok) => {
    inFlight.dec({ phase });
    calls.inc({ phase, outcome: ok ? "ok" : "error" });
    callSeconds.observe({ phase }, (performance.now() - t0) / 1000);
    requests.inc({ phase }, usage.requests);
    tokens.inc({ phase, kind: "prompt" }, usage.promptTokens);
    tokens.inc({ phase, kind: "completion" }, usage.completionTokens);
  };
}

/** A training step was reported: `done` of `total`, with its figures where known. */
export function trainingStep(done: number, total: number, step?: TrainStep): void {
  // Counted by how far `done` moved (a new run starts again from its own first step).
  steps.inc(done >= stepsDone ? done - stepsDone : done);
  stepsDone = done;
  progress.set({ kind: "done" }, done);
  progress.set({ kind: "total" }, total);
  if (step) {
    loss.set(step.loss);
    margin.set(step.margin);
  }
}
