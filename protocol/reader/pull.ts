/**
 * The core of every following reader (the work-queue inbox, the ordered followers): a consumer's
 * messages handed on one at a time, in order, under the stall watchdog, which replaces a stalled
 * pull with a new one; reading goes on with the new one once the old has ended.
 */
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { ReaderLog } from "./log.ts";
import { watchForStalls, type StallWatch, type Watchdog } from "./watchdog.ts";

/** One pull of a consumer. */
export interface Source {
  consumer: Consumer;
  messages: ConsumerMessages;
}

/** How a pull is opened, read and restarted. */
export interface PullOptions {
  /** Opens a pull: the first, and a new one after a stall (the mode decides from where). */
  open(): Promise<Source>;
  /** Each message, in order; the next waits for its promise. Progress, for the watchdog, once it returns. */
  each(m: JsMsg): Promise<void> | void;
  /**
   * When a pull ends by itself (neither stopped nor replaced): false ends the reading; true waits
   * for the watchdog to open a new one (a follower whose handler failed reads that message again).
   */
  revive: boolean;
  /** Reading a pull failed (its handler threw, or the pull itself did). */
  ended?(error: unknown): void;
  /** Work in hand, for the watchdog (not a stall). */
  busy?(): boolean;
  /** What waits for the reader, asked of the stream leader (see {@link StallWatch.waiting}). */
  waiting?(): Promise<number>;
  /** The watchdog's stall time; default its STALL_MS. */
  stallMs?: number;
  log: ReaderLog;
  about(): object;
  /** What a restart does, in words. */
  remedy: string;
}

/** A pull being read. */
export class Pull {
  private stopped = false;
  private wake?: () => void;
  private readonly watchdog: Watchdog;
  /** Resolves when reading has ended (after stop(), or a pull that ended without `revive`). */
  readonly done: Promise<void>;

  private constructor(
    private source: Source,
    private readonly o: PullOptions,
  ) {
    this.watchdog = watchForStalls({
      consumer: () => this.source.consumer,
      busy: o.busy,
      waiting: o.waiting,
      stallMs: o.stallMs,
      stopped: () => this.stopped,
      restart: () => this.restart(),
      log: o.log,
      about: o.about,
      remedy: o.remedy,
    });
    this.done = this.read().finally(() => {
      this.stopped = true;
      this.watchdog.stop();
    });
  }

  /** Opens the first pull and starts reading it. */
  static async start(o: PullOptions): Promise<Pull> {
    return new Pull(await o.open(), o);
  }

  /** Stops reading: the pull is closed at once, so nothing more arrives. */
  stop(): Promise<void> {
    this.stopped = true;
    this.watchdog.stop();
    this.wake?.();
    return this.source.messages.close().then(
      () => undefined,
      () => undefined,
    );
  }

  /** Opens a new pull in place of the current one, which is then closed. */
  private async restart(): Promise<void> {
    const next = await this.o.open();
    if (this.stopped) {
      await next.messages.close().catch(() => undefined);
      return;
    }
    const old = this.source;
    this.source = next;
    this.wake?.();
    await old.messages.close().catch(() => undefined);
  }

  private async read(): Promise<void> {
    for (;;) {
      const current = this.source;
      try {
        for await (const m of current.messages) {
          await this.o.each(m);
          this.watchdog.progress();
        }
      } catch (error) {
        this.o.ended?.(error);
      }
      if (this.stopped) return;
      if (current !== this.source) continue;
      if (!this.o.revive) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
