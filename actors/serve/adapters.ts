/**
 * The LoRA adapters `pop serve` holds beside its base model, as vLLM's runtime adapter endpoints
 * keep them: loaded by name, swapped in place, unloaded after their queued work, at most a set
 * number at once. The HTTP side (./openai-server.ts) parses the requests; this keeps the models.
 */
import type { BatchStats, MicroBatcher } from "./batcher.ts";
import { AdapterLimitError, AdapterNotFoundError, ApiError, ShuttingDownError, TypedApiError, invalidInput } from "./errors.ts";
import type { ServableBackend, ServeLog } from "./openai-server.ts";

/** A model being served: the base, or an adapter loaded at run time. */
export interface Served {
  name: string;
  backend: ServableBackend;
  batcher: MicroBatcher;
  /** `/v1/models`' `root`: the base's name, or the adapter's path as the client gave it. */
  root: string;
  /** The base's name for an adapter, null for the base. */
  parent: string | null;
  created: number;
  requests: number;
}

/** What the registry needs from the server. */
export interface AdapterRegistryOptions {
  /** The base model's name (an adapter's `parent`). */
  base: string;
  /** Most adapters loaded at once; a load beyond is refused, nothing is evicted. */
  maxAdapters: number;
  /** Opens the adapter at a path (see OpenAiServerOptions.openAdapter); without it nothing loads. */
  open?: (path: string) => Promise<ServableBackend>;
  /** Wraps an opened backend as a served model (its batcher, its card's fields). */
  serve(name: string, backend: ServableBackend, root: string, parent: string | null): Served;
  log?: ServeLog;
}

/** The adapters loaded now, by name, in load order (what `/v1/models` lists after the base). */
export class AdapterRegistry {
  private readonly loaded = new Map<string, Served>();
  /** Batch counters of unloaded adapters, so the traffic summary's totals never go back. */
  private readonly retired = { items: 0, batches: 0 };
  /** Unloads still draining and disposing, and loads still opening, for close to wait on. */
  private readonly busy = new Set<Promise<unknown>>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Adapter loads opening now, counted against the adapter cap. */
  private opening = 0;
  private stopping = false;

  constructor(private readonly o: AdapterRegistryOptions) {}

  get size(): number {
    return this.loaded.size;
  }
  get(name: string): Served | undefined {
    return this.loaded.get(name);
  }
  values(): IterableIterator<Served> {
    return this.loaded.values();
  }
  /** The batch counters of every adapter unloaded so far. */
  retiredTotals(): Pick<BatchStats, "items" | "batches"> {
    return { ...this.retired };
  }

  /**
   * Loads the adapter at `path` as `name` (or, `inplace`, swaps the weights of a loaded `name`);
   * resolves to vLLM's success text. New requests go to the new weights at once; a swapped
   * adapter's old weights finish their queued work, then are freed.
   */
  load(name: string, path: string, inplace: boolean): Promise<string> {
    return this.underLock(name, async () => {
      // As vLLM's: in place, the name's weights are swapped (or first loaded); otherwise a loaded name is refused.
      const previous = this.loaded.get(name);
      if (previous && !inplace) throw invalidInput(`The lora adapter '${name}' has already been loaded.`);
      if (this.stopping) throw new ShuttingDownError();
      // Loads of other names run beside this one: count them, so together they stay within the cap (a swap adds none).
      if (!previous && this.loaded.size + this.opening >= this.o.maxAdapters) throw new AdapterLimitError(this.o.maxAdapters);
      let opened: ServableBackend;
      this.opening++;
      try {
        opened = await this.o.open!(path);
      } catch (error) {
        const e = error as NodeJS.ErrnoException;
        if (error instanceof ApiError && !(error instanceof AdapterNotFoundError)) {
          throw new ApiError(error.status, `Loading lora ${name} failed: ${error.message}`, { cause: error });
        }
        if (error instanceof AdapterNotFoundError || e?.code === "ENOENT") {
          throw new ApiError(404, `Loading lora ${name} failed: No adapter found for ${path} (${e.message})`, { cause: error });
        }
        throw new ApiError(400, `Loading lora ${name} failed: ${e?.message ?? String(error)}`, { cause: error });
      } finally {
        this.opening--;
      }
      if (this.stopping) {
        await opened.dispose().catch(() => undefined);
        throw new ShuttingDownError();
      }
      this.loaded.set(name, this.o.serve(name, opened, path, this.o.base));
      if (previous) await this.retire(previous);
      this.o.log?.info({ adapter: name, path, inplace: Boolean(previous) }, previous ? "swapped a LoRA adapter's weights" : "loaded a LoRA adapter");
      return previous ? `Success: LoRA adapter '${name}' reloaded in place successfully.` : `Success: LoRA adapter '${name}' added successfully.`;
    });
  }

  /** Unloads `name` after its queued and running work; resolves to vLLM's success text. */
  unload(name: string): Promise<string> {
    return this.underLock(name, async () => {
      const served = this.loaded.get(name);
      if (!served) throw new TypedApiError(404, `The lora adapter '${name}' cannot be found.`, "NotFoundError");
      await this.retire(served);
      this.o.log?.info({ adapter: name }, "unloaded a LoRA adapter");
      return `Success: LoRA adapter '${name}' removed successfully.`;
    });
  }

  /** No load starts or completes from now on (a load under way disposes what it opened). */
  shutDown(): void {
    this.stopping = true;
  }

  /** Waits for loads and unloads under way, then retires every adapter after its work. */
  async retireAll(): Promise<void> {
    while (this.busy.size) await Promise.all([...this.busy]);
    await Promise.all([...this.loaded.values()].map((a) => this.retire(a)));
  }

  /** Frees every adapter now, whatever work it still has (a stop past its grace). */
  async disposeAll(): Promise<void> {
    await Promise.all([...this.loaded.values()].map((a) => a.backend.dispose().catch(() => undefined)));
    this.loaded.clear();
  }

  /** Takes an adapter out of routing at once, lets its queued and running work finish, then disposes it. */
  private async retire(served: Served): Promise<void> {
    // An adapter swapped in place has already been replaced under its name: only the old one goes.
    if (this.loaded.get(served.name) === served) this.loaded.delete(served.name);
    await served.batcher.drain();
    const b = served.batcher.stats();
    this.retired.items += b.items;
    this.retired.batches += b.batches;
    await served.backend
      .dispose()
      .catch((error: unknown) => this.o.log?.info({ adapter: served.name, error: (error as Error)?.message }, "disposing an unloaded adapter failed"));
  }

  /**
   * Runs `task` after every earlier load or unload of the same name has finished, as vLLM locks
   * each adapter name: of two loads of one name, the second sees the first's adapter.
   */
  private underLock<T>(name: string, task: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(name) ?? Promise.resolve()).then(task);
    const tail = run.catch(() => undefined);
    this.locks.set(name, tail);
    this.busy.add(tail);
    void tail.then(() => {
      this.busy.delete(tail);
      if (this.locks.get(name) === tail) this.locks.delete(name);
    });
    return run;
  }
}
