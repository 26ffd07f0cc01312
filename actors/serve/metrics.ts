/**
 * `pop serve`'s `/metrics`, in Prometheus' text exposition format (version 0.0.4), written here
 * because prom-client is not a dependency: requests by route and status, tokens read and written,
 * requests in flight, request latency as a histogram, and adapters loaded.
 */

/** Latency buckets in seconds: a cached tiny reply takes milliseconds, a large batch seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The Content-Type Prometheus expects of this format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;
const escape = (v: string) => v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
const labelText = (labels: Labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escape(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};

/** Counters, gauges and histograms keyed by their label sets; see the module comment. */
export class ServeMetrics {
  private readonly requests = new Map<string, { labels: Labels; value: number }>();
  private readonly tokens = new Map<string, { labels: Labels; value: number }>();
  private readonly latency = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(
    /** Read at scrape time: requests between arrival and answer, and adapters loaded. */
    private readonly now: () => { inFlight: number; adapters: number },
  ) {}

  /** One answered request: its route pattern (never the raw path, which clients choose), status and duration. */
  request(route: string, status: number, seconds: number): void {
    bump(this.requests, { route, status: String(status) }, 1);
    const key = route;
    let h = this.latency.get(key);
    if (!h) this.latency.set(key, (h = { labels: { route }, counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    BUCKETS.forEach((b, i) => {
      if (seconds <= b) h.counts[i]!++;
    });
    h.sum += seconds;
    h.count++;
  }

  /** Tokens of one completion for `model`: read (the prompt) and written (the reply). */
  usage(model: string, prompt: number, completion: number): void {
    bump(this.tokens, { model, direction: "in" }, prompt);
    bump(this.tokens, { model, direction: "out" }, completion);
  }

  /** The exposition text. */
  render(): string {
    const { inFlight, adapters } = this.now();
    const lines: string[] = [];
    const family = (name: string, type: string, help: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family("pop_serve_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (const { labels, value } of this.requests.values()) lines.push(`pop_serve_requests_total${labelText(labels)} ${value}`);
    family("pop_serve_tokens_total", "counter", "Tokens of chat completions (the tiny model's tokens are words): in = prompt, out = completion.");
    for (const { labels, value } of this.tokens.values()) lines.push(`pop_serve_tokens_total${labelText(labels)} ${value}`);
    family("pop_serve_requests_in_flight", "gauge", "Requests between arrival and answer.");
    lines.push(`pop_serve_requests_in_flight ${inFlight}`);
    family("pop_serve_request_duration_seconds", "histogram", "Time from a request's arrival to its answer, by route.");
    for (const h of this.latency.values()) {
      BUCKETS.forEach((b, i) => lines.push(`pop_serve_request_duration_seconds_bucket${labelText({ ...h.labels, le: String(b) })} ${h.counts[i]}`));
      lines.push(`pop_serve_request_duration_seconds_bucket${labelText({ ...h.labels, le: "+Inf" })} ${h.count}`);
      lines.push(`pop_serve_request_duration_seconds_sum${labelText(h.labels)} ${h.sum}`);
      lines.push(`pop_serve_request_duration_seconds_count${labelText(h.labels)} ${h.count}`);
    }
    family("pop_serve_adapters_loaded", "gauge", "LoRA adapters loaded beside the base model.");
    lines.push(`pop_serve_adapters_loaded ${adapters}`);
    return lines.join("\n") + "\n";
  }
}

function bump(map: Map<string, { labels: Labels; value: number }>, labels: Labels, by: number): void {
  const key = JSON.stringify(labels);
  const m = map.get(key);
  if (m) m.value += by;
  else map.set(key, { labels, value: by });
}
