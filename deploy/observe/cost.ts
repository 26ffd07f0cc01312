/**
 * The model cost table that `pop watch`, the dashboard and the report show: per iteration,
 * member and phase, the requests, tokens and seconds the member's model calls took, and the same
 * per prompt of the iteration. Finished iterations come from training_done events (they stay in
 * the control stream); the running one from the members' heartbeats, summed over a member's
 * processes. Pure: fed events and records, it answers rows.
 */
import { PHASES, type ControlEvent, type Member, type Phase, type PhaseCost, type Usage } from "../../protocol/mod.ts";

/** One line of the table. */
export interface CostRow {
  iteration: number;
  peer: string;
  phase: Phase;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  seconds: number;
  /** Where the backend tells compute from waiting (see protocol's Usage). */
  modelSeconds?: number;
  /** The iteration's prompts (0: not known yet) and the figures per prompt. */
  prompts: number;
  perPrompt?: { requests: number; tokens: number; seconds: number };
}

type TrainingDone = Extract<ControlEvent, { event: "training_done" }>;

const requestsOf = (c: PhaseCost) => PHASES.reduce((n, p) => n + (c[p]?.requests ?? 0), 0);
const key = (iteration: number, peer: string) => `${iteration}\t${peer}`;

export class CostBook {
  private readonly done = new Map<string, { iteration: number; peer: string; cost: PhaseCost }>();

  /** A training_done event: the iteration's cost as its announcing process counted it. */
  trainingDone(e: TrainingDone): void {
    if (!e.cost) return;
    const had = this.done.get(key(e.iteration, e.peer));
    // Announced again after a restart, a process has counted less: the fuller count stands.
    if (!had || requestsOf(e.cost) >= requestsOf(had.cost)) this.done.set(key(e.iteration, e.peer), { iteration: e.iteration, peer: e.peer, cost: e.cost });
  }

  /**
   * The table, by iteration, member and phase, from the events and the live `records` (every
   * process's: a member's processes each count their own); per iteration, whichever source
   * counted more requests stands. `prompts` gives each iteration's prompt count.
   */
  rows(records: Iterable<Member>, prompts: (iteration: number) => number): CostRow[] {
    const live = new Map<string, { iteration: number; peer: string; cost: PhaseCost }>();
    for (const r of records) {
      for (const it of r.cost?.iterations ?? []) {
        const k = key(it.iteration, r.peer);
        const had = live.get(k) ?? { iteration: it.iteration, peer: r.peer, cost: {} };
        live.set(k, { ...had, cost: addCost(had.cost, it.phases) });
      }
    }
    const best = new Map(this.done);
    for (const [k, v] of live) {
      const had = best.get(k);
      if (!had || requestsOf(v.cost) > requestsOf(had.cost)) best.set(k, v);
    }
    const rows: CostRow[] = [];
    for (const { iteration, peer, cost } of best.values()) {
      for (const phase of PHASES) {
        const u = cost[phase];
        if (u) rows.push(rowOf(iteration, peer, phase, u, prompts(iteration)));
      }
    }
    return rows.sort((a, b) => a.iteration - b.iteration || a.peer.localeCompare(b.peer) || PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase));
  }
}

function rowOf(iteration: number, peer: string, phase: Phase, u: Usage, prompts: number): CostRow {
  const row: CostRow = {
    iteration,
    peer,
    phase,
    requests: u.requests,
    promptTokens: u.promptTokens,
    completionTokens: u.completionTokens,
    seconds: round(u.seconds),
    ...(u.modelSeconds !== undefined ? { modelSeconds: round(u.modelSeconds) } : {}),
    prompts,
  };
  if (prompts > 0)
    row.perPrompt = {
      requests: round(u.requests / prompts),
      tokens: round((u.promptTokens + u.completionTokens) / prompts),
      seconds: round(u.seconds / prompts),
    };
  return row;
}

function addCost(a: PhaseCost, b: PhaseCost): PhaseCost {
  const sum: PhaseCost = { ...a };
  for (const p of PHASES) {
    const x = sum[p];
    const y = b[p];
    if (!y) continue;
    sum[p] = x
      ? {
          requests: x.requests + y.requests,
          promptTokens: x.promptTokens + y.promptTokens,
          completionTokens: x.completionTokens + y.completionTokens,
          seconds: x.seconds + y.seconds,
          ...(x.modelSeconds !== undefined || y.modelSeconds !== undefined ? { modelSeconds: (x.modelSeconds ?? 0) + (y.modelSeconds ?? 0) } : {}),
        }
      : y;
  }
  return sum;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** The table as compact text lines (watch's section), the latest `iterations` only. */
export function costLines(rows: CostRow[], iterations = 2): string[] {
  const shown = [...new Set(rows.map((r) => r.iteration))].sort((a, b) => a - b).slice(-iterations);
  const mine = rows.filter((r) => shown.includes(r.iteration));
  if (!mine.length) return [];
  const lines = [
    `model cost${" ".repeat(4)}${"iter".padStart(5)} ${"phase".padEnd(9)}${"requests".padStart(9)}${"tokens in/out".padStart(18)}${"seconds".padStart(10)}   per prompt: req   tok      s`,
  ];
  for (const r of mine) {
    const pp = r.perPrompt;
    lines.push(
      `${r.peer.slice(0, 13).padEnd(14)}${String(r.iteration).padStart(5)} ${r.phase.padEnd(9)}${String(r.requests).padStart(9)}${`${r.promptTokens}/${r.completionTokens}`.padStart(18)}${r.seconds.toFixed(1).padStart(10)}   ${
        pp ? `${fmt(pp.requests).padStart(15)}${fmt(pp.tokens).padStart(6)}${pp.seconds.toFixed(2).padStart(7)}` : "-".padStart(15)
      }`,
    );
  }
  return lines;
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x < 10 ? x.toFixed(1) : x.toFixed(0));
