/**
 * Which chat-completions fields `pop serve` takes: those it honours, and the "off" values of
 * those it has no use for. Anything else is refused with a 400 naming the field (its `param`),
 * as OpenAI refuses an unknown argument, so no setting is ever silently ignored.
 */
import { badRequest } from "./errors.ts";

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The body fields this server reads; `user` is only a label for the caller's own records, so it is accepted. */
const READ = new Set([
  "model",
  "messages",
  "n",
  "temperature",
  "top_p",
  "max_tokens",
  "max_completion_tokens",
  "seed",
  "logprobs",
  "top_logprobs",
  "stop",
  "stream",
  "stream_options",
  "user",
]);

/**
 * Values of fields the tiny sampler has no use for that change nothing (what clients send for
 * "off"); any other value is refused rather than silently ignored.
 */
const NEUTRAL: Record<string, (v: unknown) => boolean> = {
  presence_penalty: (v) => v === 0,
  frequency_penalty: (v) => v === 0,
  logit_bias: (v) => isObject(v) && Object.keys(v).length === 0,
  parallel_tool_calls: () => true,
  store: (v) => v === false,
  response_format: (v) => isObject(v) && v.type === "text",
  tools: (v) => Array.isArray(v) && v.length === 0,
  tool_choice: (v) => v === "none",
};

/** Refuses, with 400 naming it, every field this server would otherwise ignore. */
export function refuseUnsupported(body: Json): void {
  for (const [name, value] of Object.entries(body)) {
    if (READ.has(name) || value === null || NEUTRAL[name]?.(value)) continue;
    throw badRequest(`'${name}' is not supported by this server (pop serve honours ${[...READ].filter((f) => f !== "user").join(", ")})`, name);
  }
}
