/**
 * Reads an OpenAI chat-completions body into what the model is asked: a judge request (the
 * first user turn is our rubric's judge prompt) or a question. Every mistake becomes a 400 that
 * names the field, so a bad request never reaches the model.
 */
import { randomInt } from "node:crypto";
import type { Criterion } from "../../protocol/mod.ts";
import type { ImageInput, JudgeInput, PromptInput } from "../models/contract.ts";
import { decodeRgb, ImageFormatError, imageFromDataUrl } from "../images/codec.ts";
import { parseJudgePrompt } from "../models/openai/rubric.ts";
import { ApiError, badRequest } from "./errors.ts";
import { refuseUnsupported } from "./fields.ts";

/** Most choices per request (vLLM has no fixed bound; this keeps one request from hogging a batch). */
export const MAX_N = 64;
/** Largest image accepted, in pixels (40 MP: any photo; PIL warns of a decompression bomb at about twice that). */
export const MAX_PIXELS = 40_000_000;
/** Most `top_logprobs` (OpenAI's bound). */
export const MAX_TOP_LOGPROBS = 20;
/** Most `stop` strings (OpenAI's bound). */
export const MAX_STOP = 4;

/** Sampling settings shared by both kinds of request. */
export interface ChatSettings {
  n: number;
  /** 0 = greedy. */
  temperature: number;
  maxTokens?: number;
  /** The request's seed, or a random one when it gave none (so each request is still reproducible in logs). */
  seed: number;
  logprobs: boolean;
  topLogprobs: number;
  /** Nucleus mass in (0, 1]; 1 = the whole distribution. */
  topP: number;
  /** Strings that end a reply where they first appear (the string itself left out). */
  stop: string[];
  /** Answer as server-sent events (./streaming.ts). */
  stream: boolean;
  /** With `stream`: a last chunk with the usage (`stream_options.include_usage`). */
  includeUsage: boolean;
  /** Words in all messages' text: the usage's prompt token count. */
  promptWords: number;
}

/** A request the model scores with its 1..5 distributions for one criterion or several. */
export interface JudgeRequest extends ChatSettings {
  kind: "judge";
  item: JudgeInput;
  /** The criteria asked for, in the order the reply gives them. */
  criteria: Criterion[];
  /** "digit": the reply is one score digit; "lines": a `criterion: digit` line per criterion (the rubric's two forms). */
  reply: "digit" | "lines";
}

/** A question the model answers. */
export interface AnswerRequest extends ChatSettings {
  kind: "answer";
  prompt: PromptInput;
}

export type ChatRequest = JudgeRequest | AnswerRequest;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
/**
 * Counts words; the server reports these as token counts (the tiny model's tokens are words).
 * Counted in place: splitting a large body's text into an array of words took many times its size.
 */
export function wordCount(s: string): number {
  let words = 0;
  for (const _ of s.matchAll(/\S+/g)) words++;
  return words;
}

/**
 * Reads and checks a chat-completions body for the served model. Throws {@link ApiError}:
 * 404 for another model's name, 400 for anything else wrong.
 */
export function parseChatRequest(body: unknown, servedModel: string): ChatRequest {
  if (!isObject(body)) throw badRequest("the request body must be a JSON object");
  const model = optional(body, "model");
  if (model !== undefined) {
    if (typeof model !== "string") throw badRequest("'model' must be a string", "model");
    if (model !== servedModel) throw new ApiError(404, `The model \`${model}\` does not exist.`, { param: "model" });
  }
  refuseUnsupported(body);
  const turns = readMessages(body.messages);
  const settings = readSettings(body, turns);

  const first = turns.find((t) => t.role === "user");
  if (!first) throw badRequest("'messages' must include a user message", "messages");
  // Images of every user turn count, in order; the tiny model looks at the first one.
  const images = turns.filter((t) => t.role === "user").flatMap((t) => t.images);
  const text = first.texts.join("\n");
  // Only the first user turn decides: a later turn (a reminder to answer with a digit) keeps a judge request one.
  const judged = parseJudgePrompt(text);
  if (judged) {
    return {
      kind: "judge",
      ...settings,
      criteria: judged.criteria,
      reply: judged.reply,
      item: { prompt: { id: "judge", question: judged.question, images }, answer: judged.answer },
    };
  }
  // The tiny model answers one question without a conversation: system prompts and later turns are not shown to it.
  // The seed goes into the prompt id because the backend keys each prompt's sampling stream on (seed, id, candidate).
  return { kind: "answer", ...settings, prompt: { id: `seed-${settings.seed}`, question: text, images } };
}

/** A field's value, with JSON null read as absent (many clients send nulls for defaults). */
function optional(body: Json, name: string): unknown {
  const v = body[name];
  return v === null ? undefined : v;
}

function readBool(body: Json, name: string): boolean {
  const v = optional(body, name);
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw badRequest(`'${name}' must be true or false`, name);
  return v;
}

function readNumber(body: Json, name: string, min: number, max: number, integer: boolean): number | undefined {
  const v = optional(body, name);
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw badRequest(`'${name}' must be a number`, name);
  if (integer && !Number.isSafeInteger(v)) throw badRequest(`'${name}' must be a whole number`, name);
  if (v < min || v > max) throw badRequest(`'${name}' must be between ${min} and ${max}, got ${v}`, name);
  return v;
}

function readSettings(body: Json, turns: Turn[]): ChatSettings {
  const n = readNumber(body, "n", 1, MAX_N, true) ?? 1;
  const temperature = readNumber(body, "temperature", 0, 2, false) ?? 1;
  // max_completion_tokens replaced max_tokens in OpenAI's API; honour the newer one when both come.
  const maxTokens =
    readNumber(body, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER, true) ?? readNumber(body, "max_tokens", 1, Number.MAX_SAFE_INTEGER, true);
  const seed = readNumber(body, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true) ?? randomInt(0, 2 ** 32);
  const logprobs = readBool(body, "logprobs");
  const topLogprobs = readNumber(body, "top_logprobs", 0, MAX_TOP_LOGPROBS, true) ?? 0;
  if (topLogprobs > 0 && !logprobs) throw badRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  // OpenAI's bounds: top_p in [0, 1], where 0 keeps only the most likely token.
  const topP = readNumber(body, "top_p", 0, 1, false) ?? 1;
  const stream = readBool(body, "stream");
  const promptWords = turns.reduce((sum, t) => sum + t.texts.reduce((s, x) => s + wordCount(x), 0), 0);
  return {
    n,
    temperature,
    maxTokens,
    seed,
    logprobs,
    topLogprobs,
    topP,
    stop: readStop(body),
    stream,
    includeUsage: readStreamOptions(body, stream),
    promptWords,
  };
}

/** `stop`: one string or up to {@link MAX_STOP}, none empty. */
function readStop(body: Json): string[] {
  const v = optional(body, "stop");
  if (v === undefined) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string" && x.length > 0)) {
    throw badRequest("'stop' must be a non-empty string or an array of them", "stop");
  }
  if (list.length > MAX_STOP) throw badRequest(`'stop' takes at most ${MAX_STOP} strings, got ${list.length}`, "stop");
  return list as string[];
}

/** `stream_options`: only with `stream`, and only `include_usage` (OpenAI refuses it without streaming too). */
function readStreamOptions(body: Json, stream: boolean): boolean {
  const v = optional(body, "stream_options");
  if (v === undefined) return false;
  if (!stream) throw badRequest("'stream_options' is only allowed with 'stream': true", "stream_options");
  if (!isObject(v)) throw badRequest("'stream_options' must be an object", "stream_options");
  for (const key of Object.keys(v)) {
    if (key !== "include_usage" && v[key] !== null) throw badRequest(`'stream_options.${key}' is not supported by this server`, "stream_options");
  }
  return readBool(v, "include_usage");
}

const ROLES = ["system", "user", "assistant"] as const;
type Role = (typeof ROLES)[number];

/** One message's text parts and images. */
interface Turn {
  role: Role;
  texts: string[];
  images: ImageInput[];
}

function readMessages(messages: unknown): Turn[] {
  if (messages === undefined || messages === null) throw badRequest("'messages' is required", "messages");
  if (!Array.isArray(messages) || messages.length === 0) throw badRequest("'messages' must be a non-empty array", "messages");
  return messages.map((m, i) => readMessage(m, `messages[${i}]`));
}

function readMessage(m: unknown, where: string): Turn {
  if (!isObject(m)) throw badRequest(`${where} must be an object`, "messages");
  const role = m.role;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
    throw badRequest(`${where}.role must be one of ${ROLES.join(", ")}, got ${JSON.stringify(role)}`, "messages");
  }
  const turn: Turn = { role: role as Role, texts: [], images: [] };
  const content = m.content;
  // An assistant turn may carry no content (OpenAI allows it alongside tool calls).
  if ((content === undefined || content === null) && role === "assistant") return turn;
  if (typeof content === "string") {
    turn.texts.push(content);
    return turn;
  }
  if (!Array.isArray(content)) throw badRequest(`${where}.content must be a string or an array of content parts`, "messages");
  content.forEach((part, j) => {
    const at = `${where}.content[${j}]`;
    if (!isObject(part)) throw badRequest(`${at} must be an object`, "messages");
    if (part.type === "text") {
      if (typeof part.text !== "string") throw badRequest(`${at}.text must be a string`, "messages");
      turn.texts.push(part.text);
    } else if (part.type === "image_url") {
      if (role !== "user") throw badRequest(`${at}: only user messages may carry images`, "messages");
      turn.images.push(readImage(part.image_url, `${at}.image_url`));
    } else {
      throw badRequest(`${at}.type must be 'text' or 'image_url', got ${JSON.stringify(part.type)}`, "messages");
    }
  });
  return turn;
}

function readImage(imageUrl: unknown, where: string): ImageInput {
  if (!isObject(imageUrl) || typeof imageUrl.url !== "string") throw badRequest(`${where} must be an object with a string 'url'`, "messages");
  const url = imageUrl.url;
  // Fetching a client's URL would make the server an open proxy and its answers depend on someone else's host.
  if (/^https?:/i.test(url))
    throw badRequest(`${where}.url: http(s) image URLs are not supported; send the image inline as a data URL (data:image/png;base64,...)`, "messages");
  try {
    const image = imageFromDataUrl(url);
    // A small file can claim a huge size (a decompression bomb): refuse it before decoding.
    if (image.width * image.height > MAX_PIXELS) {
      throw badRequest(`${where}.url: the image is ${image.width}x${image.height}, over the limit of ${MAX_PIXELS / 1e6} megapixels`, "messages");
    }
    // Decoding here, like vLLM's front end, makes a corrupt image this request's 400 rather than a model failure.
    decodeRgb(image);
    return image;
  } catch (error) {
    if (error instanceof ImageFormatError) throw badRequest(`${where}.url: ${error.message}`, "messages");
    throw error;
  }
}
