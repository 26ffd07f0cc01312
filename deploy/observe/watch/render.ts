/** The `pop watch` screen: members, the open iteration's progress, message rates, scores, dead letters. */
import { costLines } from "../cost.ts";
import { expectedCounts, type WatchState } from "./state.ts";
import { progressBar, timeToGo } from "../../cli/progress.ts";

const rate = (r: number) => (r < 10 ? r.toFixed(1) : r.toFixed(0));
const secs = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);

function progressLine(label: string, done: number, total: number, perSec: number | undefined): string {
  const bar = progressBar(done, total, 20);
  const left = total - done;
  const eta = perSec && perSec > 0 && left > 0 ? `, ${timeToGo((left / perSec) * 1000)}` : "";
  return `  ${label.padEnd(11)} ${bar} ${String(done).padStart(6)} of ${String(total).padEnd(6)}${perSec !== undefined ? ` ${rate(perSec).padStart(5)}/s` : ""}${eta}`;
}

/** Who leads the coordinators: instance, since when, fencing token. */
export function leaderLine(lease: WatchState["leader"], now: number): string {
  if (!lease) return "coordinator: no lease yet (no coordinator has led, or a run from before leases)";
  const since = new Date(lease.since).toISOString().slice(11, 19);
  if (lease.released) return `coordinator: none leads (${lease.instance} let go; token ${lease.token})`;
  return `coordinator: ${lease.instance} leads since ${since} (${secs(Math.max(0, now - lease.since))}), token ${lease.token}, renewed ${secs(Math.max(0, now - lease.renewedAt))} ago`;
}

/** The screen as lines of text at `now`. */
export function renderWatch(state: WatchState, now: number): string[] {
  const clock = new Date(now).toISOString().slice(11, 19);
  const lines = [`pop watch: experiment ${state.experiment}, ${clock}${state.done ? " (experiment done)" : ""}`, leaderLine(state.leader, now), ""];

  const members = state.members;
  const peers = [...new Set([...members.keys(), ...[...state.iterations.values()].flatMap((i) => i.peers)])].sort();
  lines.push(`${"member".padEnd(14)}${"doing".padEnd(22)}${"model".padEnd(18)}${"heartbeat".padEnd(12)}where`);
  if (!peers.length) lines.push("  (no member has joined yet)");
  for (const p of peers) {
    const m = members.get(p);
    const where = m ? `${m.host} pid ${m.pid}, ${m.backend}` : "-";
    lines.push(
      `${p.padEnd(14)}${state.doing(p, now).padEnd(22)}${(m?.modelVersion ?? "-").slice(0, 16).padEnd(18)}${(m ? `${secs(Math.max(0, now - m.heartbeatAt))} ago` : "-").padEnd(12)}${where}`,
    );
  }
  lines.push("");

  const rates = state.rates(now);
  const it = state.current();
  if (it) {
    const exp = expectedCounts(it);
    lines.push(
      `iteration ${it.iteration}${it.openedAt ? `, opened ${secs(Math.max(0, now - it.openedAt))} ago` : ""}: ${it.prompts} prompts, panel ${it.peers.join(", ")}`,
    );
    lines.push(progressLine("answers", it.candidates, exp.candidates, rates.candidates ?? 0));
    lines.push(progressLine("verdicts", it.verdicts, exp.verdicts, rates.verdict ?? 0));
    lines.push(
      it.closed
        ? `  pairs       ${it.closed.pairs} kept from ${it.closed.voted} prompts voted (closed)`
        : `  pairs       ${it.pairs} so far (voting as verdicts complete)`,
    );
    if (it.closed) lines.push(`  trained     ${it.trained.length} of ${it.peers.length}${it.trained.length ? ` (${[...it.trained].sort().join(", ")})` : ""}`);
  } else {
    lines.push("no iteration opened yet");
  }
  lines.push("");

  const kinds = ["prompt", "candidates", "verdict", "pair", "evaluation", "control", "dead_letter"];
  lines.push(`messages/s over the last 10 s: ${kinds.map((k) => `${k} ${rate(rates[k] ?? 0)}`).join(", ")}`);
  lines.push("");

  const iters = [...state.scores.keys()].sort((a, b) => a - b);
  if (iters.length) {
    lines.push(`average accuracy (%) by iteration`);
    lines.push(`${"member".padEnd(14)}${iters.map((i) => `iter ${i}`.padStart(9)).join("")}`);
    for (const p of [...new Set(iters.flatMap((i) => [...state.scores.get(i)!.keys()]))].sort()) {
      lines.push(
        `${p.padEnd(14)}${iters
          .map((i) => {
            const v = state.scores.get(i)!.get(p);
            return (v === undefined ? "-" : (v * 100).toFixed(1)).padStart(9);
          })
          .join("")}`,
      );
    }
    const panel = iters.map((i) => {
      const v = [...state.scores.get(i)!.values()];
      return v.reduce((a, b) => a + b, 0) / v.length;
    });
    lines.push(`${"panel".padEnd(14)}${panel.map((v) => (v * 100).toFixed(1).padStart(9)).join("")}`);
    lines.push("");
  }

  const cost = costLines(state.costs());
  if (cost.length) lines.push(...cost, "");

  const dead = state.deadLetters.slice(-5).reverse();
  lines.push(`dead letters: ${state.deadLetters.length}${dead.length ? " (latest first)" : ""}`);
  for (const d of dead)
    lines.push(`  ${new Date(d.at).toISOString().slice(11, 19)} ${d.reason.padEnd(18)} ${d.subject}  ${d.detail.replace(/\s+/g, " ").slice(0, 100)}`);
  return lines;
}
