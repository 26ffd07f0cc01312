/**
 * Membership: a process serving a peer keeps a record in the members bucket fresh with
 * heartbeats. The coordinator reads freshness from when it sees each update (not from the
 * member's clock), so hosts at several sites need no synchronised clocks.
 */
import { hostname } from "node:os";
import { controlEvent, encode, memberKeys, PROTOCOL_VERSION, publishMessage, type Member } from "../protocol/mod.ts";
import type { PeerContext } from "./context.ts";

/** Where the record's long work in progress comes from (the training role). */
export interface ActivitySource {
  readonly activity: Member["activity"];
}

/** Keeps one process's member record fresh, and announces its joining and leaving. */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private readonly joinedAt = Date.now();
  private state: Member["state"] = "active";

  constructor(
    private readonly ctx: PeerContext,
    private readonly backendKind: string,
    private readonly work: ActivitySource,
  ) {}

  private record(): Member {
    return {
      v: PROTOCOL_VERSION,
      type: "member",
      experiment: this.ctx.experiment,
      peer: this.ctx.peer,
      instance: this.ctx.instance,
      backend: this.backendKind,
      modelVersion: this.ctx.modelVersion || "unknown",
      host: hostname(),
      pid: process.pid,
      joinedAt: this.joinedAt,
      heartbeatAt: Date.now(),
      state: this.state,
      ...(this.work.activity ? { activity: this.work.activity } : {}),
      cost: this.ctx.cost.snapshot(),
    };
  }

  private key() {
    return memberKeys.instance(this.ctx.experiment, this.ctx.peer, this.ctx.instance);
  }

  async beat(): Promise<void> {
    await this.ctx.members.put(this.key(), encode(this.record()));
  }

  /** Registers, announces the peer and keeps beating every `intervalMs`. */
  async join(): Promise<void> {
    await this.beat();
    await publishMessage(
      this.ctx.js,
      controlEvent(this.ctx.experiment, "peer_joined", { peer: this.ctx.peer, instance: this.ctx.instance, at: this.joinedAt }),
    );
    this.timer = setInterval(() => {
      this.beat().catch((error) => this.ctx.log.warn({ err: error }, "heartbeat failed; will retry"));
    }, this.ctx.config.heartbeat.intervalMs);
    this.timer.unref();
  }

  /** Marks the process as leaving (the coordinator stops waiting for it). */
  async leaving(): Promise<void> {
    this.state = "leaving";
    await this.beat().catch(() => undefined);
  }

  /** Stops beating, removes the record and announces the departure. */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    await this.ctx.members.delete(this.key()).catch(() => undefined);
    await publishMessage(
      this.ctx.js,
      controlEvent(this.ctx.experiment, "peer_left", { peer: this.ctx.peer, instance: this.ctx.instance, reason: "shutdown" }),
    ).catch(() => undefined);
  }
}
