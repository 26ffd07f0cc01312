/**
 * Prometheus `/metrics` of `pop actor --metrics-port` and `pop coordinator --metrics-port`, scraped
 * while a small panel runs: the text parses, the counters move (messages, model calls by phase,
 * training steps, the coordinator's prompts and pairs per iteration), and a clean stop closes the
 * port.
 */
import { describe, expect, it } from "vitest";
import { freePort } from "../support/ports.ts";
import { badExpositionLines, sample } from "../support/prometheus.ts";
import { startPanel, VOTE_EVERY_PROMPT } from "../support/panel.ts";

const scrape = (port: number) =>
  fetch(`http://127.0.0.1:${port}/metrics`).then(
    async (r) => (r.ok ? await r.text() : undefined),
    () => undefined,
  );

describe("Prometheus metrics", () => {
  it("are served by the actor and the coordinator while a panel runs, and the port closes with the process", async () => {
    await using panel = await startPanel(
      { experiment: "prom", iterations: 1, promptsPerIteration: 4, k: 2, temperature: 1, poolSeed: 24, minPeers: 2 },
      { voting: VOTE_EVERY_PROMPT },
    );
    const [actorPort, coordinatorPort] = [await freePort(), await freePort()];
    const ckpt = await panel.randomCheckpoints(["ann", "ben"]);
    panel.startCoordinator(["--metrics-port", String(coordinatorPort)]);
    const ann = panel.startActor("ann", ckpt.ann!, undefined, ["--metrics-port", String(actorPort)]);
    panel.startActor("ben", ckpt.ben!);

    // Scraped all along (as Prometheus would): the coordinator may exit as soon as the run is done.
    const seen: { actor: string[]; coordinator: string[] } = { actor: [], coordinator: [] };
    await panel.waitFor(
      "the experiment to finish",
      async () => {
        const [a, c] = await Promise.all([scrape(actorPort), scrape(coordinatorPort)]);
        if (a) seen.actor.push(a);
        if (c) seen.coordinator.push(c);
        return (await panel.control()).some((e) => e.event === "experiment_done");
      },
      240_000,
    );
    const actor = (await scrape(actorPort))!;
    // The coordinator exits once the run is done, so its last scrape may predate the final vote:
    // each figure is read from the scrape that saw the most.
    const coordinator = seen.coordinator.at(-1)!;
    const most = (name: string, labels: Record<string, string>) => Math.max(...seen.coordinator.map((t) => sample(t, name, labels) ?? 0));
    expect(seen.actor.length).toBeGreaterThan(1);
    for (const text of [actor, coordinator, seen.actor[0]!]) expect(badExpositionLines(text)).toEqual([]);

    // The actor: messages both ways by type, model calls and their latency by phase, training.
    expect(sample(actor, "pop_messages_total", { direction: "out", type: "candidates" })).toBe(4);
    expect(sample(actor, "pop_messages_total", { direction: "in", type: "prompt" })).toBeGreaterThanOrEqual(4);
    expect(sample(actor, "pop_messages_total", { direction: "out", type: "verdict" })).toBeGreaterThan(0);
    for (const phase of ["answer", "judge", "train", "evaluate"]) {
      expect(sample(actor, "pop_model_calls_total", { phase, outcome: "ok" }), phase).toBeGreaterThan(0);
      expect(sample(actor, "pop_model_call_duration_seconds_count", { phase }), phase).toBeGreaterThan(0);
      expect(sample(actor, "pop_model_requests_total", { phase }), phase).toBeGreaterThan(0);
    }
    expect(sample(actor, "pop_training_steps_total")).toBeGreaterThan(0);
    expect(Number.isFinite(sample(actor, "pop_training_loss"))).toBe(true);
    expect(sample(actor, "pop_actor_iteration")).toBe(1);
    // It moved: the first scrape (before training, which comes after every prompt is voted) had
    // fewer training steps than the last.
    expect(sample(seen.actor[0]!, "pop_training_steps_total") ?? 0).toBeLessThan(sample(actor, "pop_training_steps_total")!);

    // The coordinator: it led, read candidates and verdicts, published the iteration's prompts and pairs.
    // It led (it hands the lease back as it ends, so its last scrape may say 0).
    expect(most("pop_coordinator_leading", {})).toBe(1);
    expect(sample(coordinator, "pop_messages_total", { direction: "in", type: "candidates" })).toBeGreaterThanOrEqual(8);
    expect(sample(coordinator, "pop_coordinator_prompts", { iteration: "1" })).toBe(4);
    expect(sample(coordinator, "pop_coordinator_prompts_published_total", { iteration: "1" })).toBe(4);
    expect(most("pop_coordinator_prompts_voted", { iteration: "1" })).toBe(4);
    expect(most("pop_coordinator_pairs_total", { iteration: "1" })).toBe((await panel.stored("pair", "pair")).length);

    // A clean stop closes the port.
    await ann.stop();
    expect(ann.child.exitCode).toBe(0);
    expect(await scrape(actorPort)).toBeUndefined();
  }, 300_000);
});
