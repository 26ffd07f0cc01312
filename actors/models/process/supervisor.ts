/**
 * A supervised peer program: started on first use, checked by its hello, asked requests with ids
 * and deadlines, and replaced when it fails. A crash, a request past its deadline, a line that is
 * not JSON, or a message its schema refuses fail every request in flight with a named, retryable
 * error (logged), the run is stopped, and the next request starts a fresh one after a backoff
 * that doubles with each failure in a row. An error reply fails only its own request.
 */
import { PeerChild, type ChildLog } from "./child.ts";
import { PeerExitedError, PeerProcessError, PeerProtocolError, PeerReportedError, PeerStartError, PeerStoppedError, PeerTimeoutError } from "./errors.ts";
import { Hello, METHOD_CAPABILITY, PeerMessage, RESULTS, type Method, type ParamsOf, type PeerProgress, type ResultOf } from "./wire.ts";

/** The log a supervisor writes to. */
export interface SupervisorLog extends ChildLog {
  warn(fields: object, msg: string): void;
}

/** Options of {@link PeerSupervisor}. */
export interface SupervisorOptions {
  /** The program, run with `sh -c`. */
  command: string;
  /** Extra environment of the program. */
  env?: Record<string, string>;
  log?: SupervisorLog;
  /** Time the program has to say hello (default 60 s). */
  startTimeoutMs?: number;
  /** First restart delay after a failure, doubled with each failure in a row (default 500 ms). */
  backoffMs?: number;
  /** Longest restart delay (default 30 s). */
  maxBackoffMs?: number;
  /** Each step of a stop: stdin closed, then SIGTERM, then SIGKILL, this far apart (default 5 s). */
  stopGraceMs?: number;
  /** Runs on each fresh run after its hello, before any request (e.g. to load the current adapter). */
  afterStart?: (run: PeerRun) => Promise<void>;
}

type Pending = {
  method: Method;
  resolve(result: unknown): void;
  reject(error: Error): void;
  onProgress?: (progress: PeerProgress) => void;
  timer: NodeJS.Timeout;
};

/** Longest excerpt of an offending line quoted in an error. */
const EXCERPT = 200;
const excerpt = (line: string) => (line.length > EXCERPT ? `${line.slice(0, EXCERPT)}...` : line);

/** One run of the program, after its hello: where requests go. */
export class PeerRun {
  readonly pending = new Map<number, Pending>();
  hello?: Hello;
  failed?: PeerProcessError;

  constructor(readonly child: PeerChild) {}
}

export class PeerSupervisor {
  private current?: PeerRun;
  private starting?: Promise<PeerRun>;
  private nextId = 1;
  private failuresInARow = 0;
  private lastFailureAt = 0;
  private stopped = false;
  private readonly stops = new Set<Promise<void>>();

  constructor(private readonly options: SupervisorOptions) {}

  /** The program's hello (starting it when it is not running). */
  async hello(): Promise<Hello> {
    return (await this.running()).hello!;
  }

  /** Sends a request and resolves with its checked result; rejects with a {@link PeerProcessError}. */
  async request<M extends Method>(
    method: M,
    params: ParamsOf<M>,
    options: { timeoutMs: number; onProgress?: (p: PeerProgress) => void },
  ): Promise<ResultOf<M>> {
    return this.requestOn(await this.running(), method, params, options);
  }

  /** A request on a given run (what afterStart uses, before the run is handed out). */
  requestOn<M extends Method>(
    run: PeerRun,
    method: M,
    params: ParamsOf<M>,
    options: { timeoutMs: number; onProgress?: (p: PeerProgress) => void },
  ): Promise<ResultOf<M>> {
    if (run.failed) return Promise.reject(run.failed);
    const need = METHOD_CAPABILITY[method];
    if (!run.hello!.capabilities.includes(need)) {
      return Promise.reject(new PeerProtocolError(`the peer program has no '${need}' capability for a ${method} request`, { retryable: false }));
    }
    const id = this.nextId++;
    return new Promise<ResultOf<M>>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.fail(
            run,
            new PeerTimeoutError(`the peer program did not answer ${method} request ${id} within ${options.timeoutMs} ms`, {
              stderrTail: run.child.stderrTail,
            }),
          ),
        options.timeoutMs,
      );
      run.pending.set(id, { method, resolve: resolve as (r: unknown) => void, reject, onProgress: options.onProgress, timer });
      run.child.send({ id, method, params });
    });
  }

  /** Stops the program (stdin closed, SIGTERM, SIGKILL); requests in flight fail retryable. */
  async dispose(): Promise<void> {
    this.stopped = true;
    await this.starting?.catch(() => undefined);
    const run = this.current;
    this.current = undefined;
    if (run) {
      this.settleAll(run, new PeerStoppedError("the peer program was stopped (the actor is leaving)"));
      await run.child.stop(this.options.stopGraceMs ?? 5_000);
    }
    await Promise.all(this.stops);
  }

  private running(): Promise<PeerRun> {
    if (this.stopped) return Promise.reject(new PeerStoppedError("the peer program was stopped"));
    if (this.current) return Promise.resolve(this.current);
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<PeerRun> {
    const o = this.options;
    if (this.failuresInARow > 0) {
      const delay = Math.min((o.backoffMs ?? 500) * 2 ** (this.failuresInARow - 1), o.maxBackoffMs ?? 30_000);
      const wait = this.lastFailureAt + delay - Date.now();
      o.log?.warn({ failuresInARow: this.failuresInARow, delayMs: delay }, "restarting the peer program");
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (this.stopped) throw new PeerStoppedError("the peer program was stopped");
    }
    // The failed run is gone before the next starts: two copies of a model at once may not fit its GPU.
    await Promise.all(this.stops);
    if (this.stopped) throw new PeerStoppedError("the peer program was stopped");
    let helloWaiter: { resolve(h: Hello): void; reject(e: Error): void } | undefined;
    const hello = new Promise<Hello>((resolve, reject) => (helloWaiter = { resolve, reject }));
    let run!: PeerRun;
    const child = new PeerChild(
      o.command,
      {
        line: (line) => this.onLine(run, line, helloWaiter!),
        exit: (code, signal) => {
          const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          const error = new PeerExitedError(`the peer program ${JSON.stringify(o.command)} ${how}`, { stderrTail: run.child.stderrTail });
          helloWaiter!.reject(error);
          this.fail(run, error);
        },
      },
      o.log,
      o.env,
    );
    run = new PeerRun(child);
    const startMs = o.startTimeoutMs ?? 60_000;
    const timer = setTimeout(
      () => helloWaiter!.reject(new PeerStartError(`the peer program did not say hello within ${startMs} ms`, { stderrTail: child.stderrTail })),
      startMs,
    );
    try {
      run.hello = await hello;
      // Handed out only once it has what the last run had: a request must not reach a program
      // that has not loaded the current adapter yet.
      await o.afterStart?.(run);
      if (run.failed) throw run.failed;
      this.current = run;
      o.log?.info({ programPid: child.pid, program: run.hello.name, capabilities: run.hello.capabilities }, "the peer program is ready");
      return run;
    } catch (error) {
      const failure =
        error instanceof PeerProcessError ? error : new PeerStartError(`the peer program failed to start: ${(error as Error).message}`, { cause: error });
      this.fail(run, failure);
      throw failure;
    } finally {
      clearTimeout(timer);
    }
  }

  private onLine(run: PeerRun, line: string, helloWaiter: { resolve(h: Hello): void; reject(e: Error): void }): void {
    if (run.failed || !line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      return this.fail(
        run,
        new PeerProtocolError(`the peer program wrote a line that is not JSON: ${excerpt(line)}`, { cause: error, stderrTail: run.child.stderrTail }),
      );
    }
    const parsed = PeerMessage.safeParse(value);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(message)"}: ${i.message}`).join("; ");
      return this.fail(
        run,
        new PeerProtocolError(`the peer program wrote a message the wire's schema refuses (${problems}): ${excerpt(line)}`, { cause: parsed.error }),
      );
    }
    const m = parsed.data;
    if (!run.hello) {
      if (m.type !== "hello") return this.fail(run, new PeerProtocolError(`the peer program's first message must be a hello, got '${m.type}'`));
      return this.checkHello(run, m, helloWaiter);
    }
    if (m.type === "hello") return this.fail(run, new PeerProtocolError("the peer program said hello twice"));
    const p = run.pending.get(m.id);
    if (!p) return this.fail(run, new PeerProtocolError(`the peer program replied to request ${m.id}, which is not in flight: ${excerpt(line)}`));
    if (m.type === "progress") return p.onProgress?.(m);
    run.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.type === "error")
      return p.reject(new PeerReportedError(`the peer program failed ${p.method} request ${m.id}: ${m.message}`, { retryable: m.retryable }));
    const result = RESULTS[p.method].safeParse(m.result);
    if (!result.success) {
      const problems = result.error.issues.map((i) => `${i.path.join(".") || "(result)"}: ${i.message}`).join("; ");
      const error = new PeerProtocolError(`the peer program's ${p.method} result breaks the wire's schema (${problems})`, { cause: result.error });
      p.reject(error);
      return this.fail(run, error);
    }
    this.failuresInARow = 0;
    p.resolve(result.data);
  }

  private checkHello(run: PeerRun, hello: Hello, waiter: { resolve(h: Hello): void; reject(e: Error): void }): void {
    const missing = (["answer", "judge"] as const).filter((c) => !hello.capabilities.includes(c));
    // A program that cannot do the required things won't learn to on a restart: not retryable.
    if (missing.length)
      return waiter.reject(new PeerStartError(`the peer program lacks the required capabilities ${missing.join(", ")}`, { retryable: false }));
    if (hello.capabilities.includes("train") && !hello.capabilities.includes("weights")) {
      return waiter.reject(
        new PeerStartError("the peer program can train but not load weights ('weights'): replicas and restarts need both", { retryable: false }),
      );
    }
    waiter.resolve(hello);
  }

  /** Fails a run once: every request in flight rejected, the failure logged, the run stopped and not used again. */
  private fail(run: PeerRun, error: PeerProcessError): void {
    if (run.failed) return;
    run.failed = error;
    if (this.current === run) this.current = undefined;
    this.failuresInARow++;
    this.lastFailureAt = Date.now();
    this.settleAll(run, error);
    if (!this.stopped)
      this.options.log?.warn({ err: { name: error.name, message: error.message }, retryable: error.retryable }, `the peer program failed: ${error.name}`);
    const stop = run.child.stop(Math.min(this.options.stopGraceMs ?? 5_000, 2_000));
    this.stops.add(stop);
    void stop.finally(() => this.stops.delete(stop));
  }

  private settleAll(run: PeerRun, error: PeerProcessError): void {
    for (const p of run.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    run.pending.clear();
  }
}
