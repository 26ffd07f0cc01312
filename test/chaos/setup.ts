/**
 * What a chaos fault (test/chaos/chaos.ts) is made of: the servers its run needs, the panel's
 * settings that differ per fault, which coordinator processes run, how the fault hurts the run
 * and the checks of its own. Random choices come from the run's seed, so a run replays.
 */
import type { PopProcess } from "../../deploy/cli/processes.ts";
import type { PanelNetwork } from "../support/networks.ts";
import type { Panel } from "../support/panel.ts";

/** A run in progress, as a fault sees it: the panel, its latest process of each name, and a (re)start. */
export interface Run {
  panel: Panel<PanelNetwork>;
  processes: Map<string, PopProcess>;
  /** Starts (again) the process called `name`: a peer or one of the setup's coordinators. */
  restart(name: string): void;
}

/** When the fault began and ended (wall clock, ms), and what it took down. */
export interface Injected {
  at: number;
  endedAt: number;
  /** Peers whose processes the fault killed and later restarted (they must leave by heartbeat and rejoin). */
  lostPeers?: string[];
  /** The coordinator that led when the fault began (the standby is the other). */
  leader?: string;
}

/** A fault: the servers its run needs, its settings and how it hurts the run. */
export interface Setup {
  network: PanelNetwork;
  /** Prompts per iteration. */
  prompts: number;
  /** The members' heartbeats: how long one may stay silent before it leaves. */
  heartbeat: { intervalMs: number; lapseMs: number };
  /** The coordinator lease, when it matters to the fault. */
  leaseMs?: number;
  /** The coordinator processes by name, in start order: the first leads before the next starts. */
  coordinators(panel: Panel<PanelNetwork>): Record<string, () => PopProcess>;
  inject(r: () => number, run: Run, note: (s: string) => void): Promise<Injected>;
  /** What broke that only this fault checks. */
  check?(run: Run, injected: Injected): Promise<string[]>;
}

/** A number between lo and hi from the run's random stream. */
export const between = (r: () => number, lo: number, hi: number): number => Math.round(lo + r() * (hi - lo));
export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** The single coordinator most faults run. */
export const oneCoordinator = (panel: Panel<PanelNetwork>): Record<string, () => PopProcess> => ({ coordinator: () => panel.startCoordinator() });
