/**
 * A chat completion sent as server-sent events, as OpenAI streams it: one
 * `chat.completion.chunk` per event, first each choice's role, then its content in deltas (one
 * per token, with that token's log-probs when asked for), then its `finish_reason`, then with
 * `stream_options.include_usage` a last chunk with no choices and the usage (every chunk before
 * carries `usage: null`), then `data: [DONE]`. The role goes out at once, before the model runs,
 * so a client that hangs up meanwhile is seen and its queued work dropped.
 */
import type { ServerResponse } from "node:http";
import type { Choice } from "./completion.ts";
import type { ErrorObject } from "./errors.ts";

/** What every chunk of one completion shares. */
export interface StreamHead {
  id: string;
  created: number;
  model: string;
  /** Choices in the completion (`n`). */
  n: number;
  includeUsage: boolean;
}

/** Token counts as a completion's `usage` gives them. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Writes one streamed completion to `res`; see the module comment. */
export class CompletionStream {
  constructor(
    private readonly res: ServerResponse,
    private readonly head: StreamHead,
  ) {}

  /** Whether the client is still there to read. */
  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  /** Sends the headers and each choice's role delta. */
  start(): void {
    this.res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
    for (let index = 0; index < this.head.n; index++) this.chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
  }

  /** Sends the choices' content deltas and finish reasons, the usage when asked for, and ends the stream. */
  finish(choices: Choice[], usage: Usage): void {
    for (const choice of choices) {
      for (const delta of deltasOf(choice)) this.chunk([{ index: choice.index, ...delta, finish_reason: null }]);
      this.chunk([{ index: choice.index, delta: {}, logprobs: null, finish_reason: choice.finish_reason }]);
    }
    if (this.head.includeUsage) this.chunk([], usage);
    this.end();
  }

  /** Ends the stream with an error event (OpenAI's clients raise it as an APIError). */
  fail(error: { error: ErrorObject }): void {
    this.event(JSON.stringify(error));
    this.end();
  }

  private end(): void {
    if (!this.open) return;
    this.event("[DONE]");
    this.res.end();
  }

  private chunk(choices: object[], usage: Usage | null = null): void {
    const { id, created, model, includeUsage } = this.head;
    this.event(JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...(includeUsage ? { usage } : {}) }));
  }

  private event(data: string): void {
    if (this.open) this.res.write(`data: ${data}\n\n`);
  }
}

/**
 * A choice's content as deltas: one per token (the token's share of the content: a reply cut at
 * a stop string may end inside one), or the whole content at once when the model gave no tokens.
 */
function deltasOf(choice: Choice): { delta: { content: string }; logprobs: Choice["logprobs"] }[] {
  const content = choice.message.content;
  const tokens = choice.logprobs?.content;
  if (!tokens?.length) return content ? [{ delta: { content }, logprobs: choice.logprobs ? { content: [] } : null }] : [];
  let at = 0;
  const out = tokens.map((t) => {
    const piece = content.slice(at, at + t.token.length);
    at += t.token.length;
    return { delta: { content: piece }, logprobs: { content: [t] } };
  });
  // Anything the tokens do not cover (never, for this server's replies) still reaches the client.
  if (at < content.length) out.push({ delta: { content: content.slice(at) }, logprobs: { content: [] } });
  return out;
}
