/**
 * The coordinator's view of the panel, from the members bucket. A process is alive while its
 * heartbeats keep arriving; freshness is measured on the coordinator's clock at receipt, so
 * remote clocks don't matter. A peer is alive while any of its processes is.
 */
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { DecodeError, memberKeys, readRevised, recordOf, type Member } from "../protocol/mod.ts";

interface Seen {
  member: Member;
  /** Local time the last heartbeat arrived. */
  at: number;
  /** The KV revision of that heartbeat. */
  revision: number;
}

export class MembershipView {
  private readonly processes = new Map<string, Seen>();
  private watcher?: { stop(): void };
  /** Peers reported lapsed, so each lapse is announced once. */
  private readonly lapsed = new Set<string>();

  constructor(
    private readonly kv: KV,
    private readonly experiment: string,
    private readonly lapseMs: number,
    private readonly log: Logger,
  ) {}

  private onChange: () => void = () => undefined;

  async start(onChange: () => void): Promise<void> {
    this.onChange = onChange;
    await this.watch();
  }

  private async watch(): Promise<void> {
    const onChange = this.onChange;
    const watch = await this.kv.watch({ key: memberKeys.all(this.experiment) });
    this.watcher = watch;
    (async () => {
      for await (const entry of watch) {
        try {
          const member = recordOf(entry, "member");
          if (!member) {
            this.processes.delete(entry.key); // the process left (a delete or purge marker)
          } else {
            this.processes.set(entry.key, { member, at: Date.now(), revision: entry.revision });
            this.lapsed.delete(`${member.peer}/${member.instance}`);
          }
        } catch (error) {
          this.log.warn({ key: entry.key, reason: error instanceof DecodeError ? error.message : String(error) }, "ignoring an invalid membership record");
        }
        onChange();
      }
    })().catch((error) => this.log.error({ err: error }, "membership watch ended"));
  }

  stop(): void {
    this.watcher?.stop();
  }

  /**
   * Before anyone is declared lapsed, asks the bucket itself: a watch can stall for minutes when a
   * cluster node dies (its consumer's leader is gone) while the heartbeats are still being stored.
   * A process whose stored heartbeat is newer than the one the watch delivered is alive, and the
   * watch is started again.
   */
  async confirm(now = Date.now()): Promise<void> {
    let stale = false;
    for (const [key, s] of this.processes) {
      if (now - s.at <= this.lapseMs / 2 || this.lapsed.has(`${s.member.peer}/${s.member.instance}`)) continue;
      const stored = await readRevised(this.kv, key, "member");
      if (stored && stored.revision > s.revision) {
        this.processes.set(key, { member: stored.record, at: now, revision: stored.revision });
        stale = true;
      }
    }
    if (stale) {
      this.log.warn({}, "the membership watch fell behind the bucket; restarting it");
      this.watcher?.stop();
      await this.watch();
    }
  }

  /** Peers with at least one live, active process. */
  alive(now = Date.now()): Set<string> {
    const peers = new Set<string>();
    for (const s of this.processes.values()) {
      if (s.member.state === "active" && now - s.at <= this.lapseMs) peers.add(s.member.peer);
    }
    return peers;
  }

  /** Processes whose heartbeats stopped since the last call (each reported once). */
  newlyLapsed(now = Date.now()): Member[] {
    const out: Member[] = [];
    for (const s of this.processes.values()) {
      const id = `${s.member.peer}/${s.member.instance}`;
      if (now - s.at > this.lapseMs && !this.lapsed.has(id)) {
        this.lapsed.add(id);
        out.push(s.member);
      }
    }
    return out;
  }
}
