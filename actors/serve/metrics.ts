/**
 * `pop serve`'s `/metrics`, in Prometheus' text format through prom-client, as the actor's and the
 * coordinator's: requests by route and status, tokens read and written, requests in flight,
 * request latency as a histogram, and adapters loaded. A registry per server, not per process:
 * tests run several servers in one process, and each must show only its own traffic.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Latency buckets in seconds: a cached tiny reply takes milliseconds, a large batch seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** One server's metrics; see the module comment. */
export class ServeMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"route" | "status">;
  private readonly tokens: Counter<"model" | "direction">;
  private readonly latency: Histogram<"route">;

  constructor(
    /** Read at scrape time: requests between arrival and answer, and adapters loaded. */
    now: () => { inFlight: number; adapters: number },
  ) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "pop_serve_requests_total",
      help: "HTTP requests answered, by route and status.",
      labelNames: ["route", "status"],
      registers,
    });
    this.tokens = new Counter({
      name: "pop_serve_tokens_total",
      help: "Tokens of chat completions (the tiny model's tokens are words): in = prompt, out = completion.",
      labelNames: ["model", "direction"],
      registers,
    });
    new Gauge({
      name: "pop_serve_requests_in_flight",
      help: "Requests between arrival and answer.",
      registers,
      collect() {
        this.set(now().inFlight);
      },
    });
    this.latency = new Histogram({
      name: "pop_serve_request_duration_seconds",
      help: "Time from a request's arrival to its answer, by route.",
      labelNames: ["route"],
      buckets: BUCKETS,
      registers,
    });
    new Gauge({
      name: "pop_serve_adapters_loaded",
      help: "LoRA adapters loaded beside the base model.",
      registers,
      collect() {
        this.set(now().adapters);
      },
    });
  }

  /** One answered request: its route pattern (never the raw path, which clients choose), status and duration. */
  request(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  /** Tokens of one completion for `model`: read (the prompt) and written (the reply). */
  usage(model: string, prompt: number, completion: number): void {
    this.tokens.inc({ model, direction: "in" }, prompt);
    this.tokens.inc({ model, direction: "out" }, completion);
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Its Content-Type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
