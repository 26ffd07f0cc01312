/**
 * The parts of the OpenAI chat-completions wire format this backend reads, as vLLM, SGLang,
 * llama.cpp's server, Ollama and OpenAI send them. Checked with zod so a server that answers
 * garbage gets a clear error, not an undefined deep in the code.
 */
import { z } from "zod";

const TopLogprob = z.object({ token: z.string(), logprob: z.number() });

/** One generated token with its log-prob and the most likely alternatives at its position. */
export const TokenLogprob = TopLogprob.extend({ top_logprobs: z.array(TopLogprob).nullish() });
export type TokenLogprob = z.infer<typeof TokenLogprob>;

export const Choice = z.object({
  index: z.number().int().optional(),
  message: z.object({ role: z.string().optional(), content: z.string().nullish() }),
  logprobs: z.object({ content: z.array(TokenLogprob).nullish() }).nullish(),
  finish_reason: z.string().nullish(),
});
export type Choice = z.infer<typeof Choice>;

export const ChatCompletion = z.object({
  choices: z.array(Choice),
  model: z.string().optional(),
});
export type ChatCompletion = z.infer<typeof ChatCompletion>;

export const ModelList = z.object({
  // Ollama sends `data: null` when it has no models.
  data: z
    .array(z.object({ id: z.string(), root: z.string().nullish(), parent: z.string().nullish() }).passthrough())
    .nullish()
    .transform((d) => d ?? []),
});
export type ModelList = z.infer<typeof ModelList>;

/** A message part: text, or an image as a URL (we send data URLs). */
export type ContentPart = { type: "text"; text: string } | { type: "image_url"; image_url: { url: string } };
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string | ContentPart[];
}

/** The request body fields this backend sends. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  n?: number;
  temperature?: number;
  max_tokens?: number;
  seed?: number;
  logprobs?: boolean;
  top_logprobs?: number;
}

/**
 * The human-readable message of an error body, whichever server sent it:
 * `{"error": {"message": ...}}` (OpenAI, llama.cpp, Ollama's /v1), `{"object": "error",
 * "message": ...}` (vLLM), `{"error": "..."}` (Ollama's native API), `{"detail": ...}` (FastAPI).
 */
export function errorMessageOf(body: unknown): string | undefined {
  if (typeof body === "string") return body.trim() || undefined;
  if (!body || typeof body !== "object") return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.error === "string") return b.error;
  if (b.error && typeof b.error === "object") {
    const m = (b.error as Record<string, unknown>).message;
    if (typeof m === "string") return m;
  }
  if (typeof b.message === "string") return b.message;
  if (typeof b.detail === "string") return b.detail;
  if (Array.isArray(b.detail)) return JSON.stringify(b.detail).slice(0, 500);
  return undefined;
}
