/** `pop serve`: a tiny checkpoint behind an OpenAI-compatible HTTP API (vLLM's dialect). */
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, extname, join, resolve } from "node:path";
import { BackendConfigError, type PlugContext } from "../../../actors/models/registry.ts";
import { AdapterNotFoundError, canServe, startOpenAiServer, type ServableBackend } from "../../../actors/serve/openai-server.ts";
import { shippedMembers } from "../../../actors/models/tiny/checkpoints.ts";
import { tinyPlug } from "../../../actors/models/tiny/plug.ts";
import { UsageError, type Flags } from "../args.ts";
import { onShutdown } from "../connect.ts";
import { createLogger } from "../log.ts";

export const serveHelp = `pop serve (--peer NAME | --checkpoint FILE) [options]

Serves a tiny checkpoint the way vLLM serves a model: GET /v1/models and POST
/v1/chat/completions (n, temperature, max_tokens, seed, logprobs/top_logprobs; images as PNG or
JPEG data URLs; no streaming). Judge prompts of our rubric are answered with a score digit and
the model's log-probs of 1..5, so the 'openai' backend runs against it as against a real server.
Concurrent requests are batched into shared model calls. Ctrl-C stops it.

  --peer NAME           a shipped checkpoint (${shippedMembers().join(", ")})
  --checkpoint FILE     a checkpoint file instead
  --model NAME          the name clients ask for                              default: the peer or file's base name
  --host HOST           interface to listen on (0.0.0.0: every one)           default: 127.0.0.1
  --port N              port; 0 = any free one                                default: 8000
  --batch-window-ms N   how long a request waits for others to batch with     default: 5
  --max-batch N         most requests per batch                               default: 64
  --log-format F        pretty or json                                        default: pretty
  (POP_LOG_LEVEL=debug logs one line per request; a summary comes every 10 s at info.)

Once listening it prints one line to stdout: serving MODEL at http://HOST:PORT/v1

Adapters: like a vLLM started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, it
loads and unloads models at run time, without a restart (what a peer does after each iteration's
training). POST /v1/load_lora_adapter {"lora_name": NAME, "lora_path": PATH} opens the tiny
checkpoint at PATH (a directory holding model.bin, as the tiny trainer writes it, or the .bin file
itself) beside the base; requests then ask for it as "model": NAME, and GET /v1/models lists it
with "parent" the base. POST /v1/unload_lora_adapter {"lora_name": NAME} stops routing to it, lets
its queued requests finish and frees it. Both answer success as plain text, errors as vLLM does
(400 for a name already loaded, 404 for a path with no adapter or an unknown name).

Example:
  pop serve --peer ocrdumb
  curl -s http://127.0.0.1:8000/v1/models
  curl -s http://127.0.0.1:8000/v1/chat/completions -H 'content-type: application/json' -d '{
    "model": "ocrdumb", "n": 3, "seed": 1,
    "messages": [{"role": "user", "content": [
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,'"$(base64 -w0 scene.png)"'"}},
      {"type": "text", "text": "what color is the circle"}]}]}'
  curl -s http://127.0.0.1:8000/v1/load_lora_adapter -H 'content-type: application/json' \\
    -d '{"lora_name": "ocrdumb-it1", "lora_path": "/runs/ocrdumb/iter-1"}'
  curl -s http://127.0.0.1:8000/v1/unload_lora_adapter -H 'content-type: application/json' \\
    -d '{"lora_name": "ocrdumb-it1"}'

A peer that uses it as its model:
  pop actor --peer ocrdumb --backend openai --base-url http://127.0.0.1:8000/v1 --model ocrdumb`;

export async function runServe(flags: Flags): Promise<void> {
  const peerFlag = flags.string("peer");
  const checkpoint = flags.string("checkpoint");
  if (!peerFlag && !checkpoint) throw new UsageError("pass --peer NAME or --checkpoint FILE", serveHelp);
  const peer = peerFlag ?? basename(checkpoint!, extname(checkpoint!));
  const model = flags.string("model") ?? peer;
  if (!model.trim()) throw new UsageError("--model must not be empty", serveHelp);
  const host = flags.string("host") ?? "127.0.0.1";
  const port = flags.int("port", { min: 0, max: 65535 }) ?? 8000;
  const batchWindowMs = flags.number("batch-window-ms", { min: 0, max: 10_000 });
  const maxBatch = flags.int("max-batch", { min: 1, max: 4096 });
  const log = createLogger("serve", { format: flags.logFormat() });
  let spec;
  try {
    // Of the tiny kind's options only --checkpoint means anything to a server (it does not evaluate).
    const only = (name: string) => name === "checkpoint";
    spec = tinyPlug.configure(
      {
        string: (n) => (only(n) ? flags.string(n) : undefined),
        number: (n, c) => (only(n) ? flags.number(n, c) : undefined),
        int: (n, c) => (only(n) ? flags.int(n, c) : undefined),
        bool: (n) => (only(n) ? flags.bool(n) : false),
      },
      { peer, log },
    );
  } catch (error) {
    if (error instanceof BackendConfigError) throw new UsageError(error.message, serveHelp);
    throw error;
  }
  flags.rejectUnknown();

  log.info({ model, weights: spec.weights }, "opening the model");
  const backend = await tinyPlug.open(spec, { peer, log });
  if (!canServe(backend)) {
    await backend.dispose();
    throw new Error("this backend does not report score distributions, which judge requests need");
  }
  let server;
  try {
    // Always on: it costs nothing until a client loads an adapter.
    const openAdapter = (path: string) => openTinyAdapter(path, { peer, log });
    server = await startOpenAiServer({ backend, model, openAdapter, host, port, batchWindowMs, maxBatch, log });
  } catch (error) {
    await backend.dispose();
    throw error;
  }
  const running = server;
  onShutdown(async (signal) => {
    log.info({ signal }, "stopping");
    await running.close();
    await backend.dispose();
  });
  process.stdout.write(`serving ${model} at ${running.url}/v1\n`);
}

/**
 * Opens a tiny "adapter" for `pop serve`'s /v1/load_lora_adapter: a directory holding the trained
 * checkpoint as model.bin (what the tiny trainer writes), or a checkpoint file itself, in a
 * worker thread of its own. A leading ~ and relative paths resolve as vLLM resolves a lora_path.
 * Throws {@link AdapterNotFoundError} when there is nothing to load at the path.
 */
export async function openTinyAdapter(path: string, context: PlugContext): Promise<ServableBackend> {
  const where = resolve(path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path);
  const found = await stat(where).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT" || error.code === "ENOTDIR") throw new AdapterNotFoundError(`nothing exists at ${where}`, { cause: error });
    throw error;
  });
  let weights = where;
  if (found.isDirectory()) {
    weights = join(where, "model.bin");
    const file = await stat(weights).catch(() => undefined);
    if (!file?.isFile()) throw new AdapterNotFoundError(`the directory holds no model.bin, where a tiny adapter keeps its checkpoint`);
  }
  const backend = await tinyPlug.open({ weights }, context);
  if (!canServe(backend)) {
    await backend.dispose();
    throw new Error("this backend does not report score distributions, which judge requests need");
  }
  return backend;
}
