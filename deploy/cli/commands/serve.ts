/** `pop serve`: a tiny checkpoint behind an OpenAI-compatible HTTP API (as the official clients and vLLM's adapter endpoints expect it). */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, extname, join, resolve } from "node:path";
import { BackendConfigError, type PlugContext } from "../../../actors/models/registry.ts";
import { readAdapterFile, type AdapterBounds } from "../../../actors/serve/adapter-files.ts";
import { AdapterBaseMismatchError, AdapterPathError } from "../../../actors/serve/errors.ts";
import { canServe, startOpenAiServer, type ServableBackend } from "../../../actors/serve/openai-server.ts";
import { lineageMismatch, tinyLineage, type TinyLineage } from "../../../actors/models/tiny/lineage.ts";
import { shippedMembers } from "../../../actors/models/tiny/checkpoints.ts";
import { tinyPlug } from "../../../actors/models/tiny/plug.ts";
import { UsageError, type Flags } from "../args.ts";
import { onShutdown } from "../connect.ts";
import { createLogger } from "../log.ts";

export const serveHelp = `pop serve (--peer NAME | --checkpoint FILE) [options]

Serves a tiny checkpoint the way vLLM serves a model, readable by the official openai clients:
GET /v1/models, GET /v1/models/{id} and POST /v1/chat/completions (n, temperature, top_p, seed,
max_tokens / max_completion_tokens, stop, logprobs/top_logprobs for every generated token,
stream with stream_options.include_usage; images as PNG or JPEG data URLs). finish_reason is
"length" when max_tokens cut a reply. Any other field is refused with a 400 naming it (its
"param"), never ignored; errors come as {"error": {"message", "type", "param", "code"}}. Judge
prompts of our rubric are answered with a score digit and the model's log-probs of 1..5, so the
'openai' backend runs against it as against a real server. GET /metrics: Prometheus text
(requests by route and status, tokens in and out, in flight, latency, adapters loaded).
Concurrent requests are batched into shared model calls. Ctrl-C or SIGTERM stops it within
seconds: work still running after 3 s is cut off.

  --peer NAME           a shipped checkpoint (${shippedMembers().join(", ")})
  --checkpoint FILE     a checkpoint file instead
  --model NAME          the name clients ask for                              default: the peer or file's base name
  --host HOST           interface to listen on (0.0.0.0: every one)           default: 127.0.0.1
  --port N              port; 0 = any free one                                default: 8000
  --batch-window-ms N   how long a request waits for others to batch with     default: 5
  --max-batch N         most requests per batch                               default: 64
  --log-format F        pretty or json                                        default: pretty
  (POP_LOG_LEVEL=debug logs one line per request; a summary comes every 10 s at info.)

Limits (a client gets a clear 4xx, or 503 with Retry-After, beyond them):
  --adapter-dir DIR     adapters load only from regular files under DIR, symlinks resolved
                        (relative lora_paths are taken under it); a peer's --work-dir, where
                        its openai backend unpacks adapters, must lie under it   default: ./pop-work
  --max-adapter-bytes N  largest adapter file read                             default: 67108864 (64 MiB)
  --max-adapters N      most adapters loaded at once; a load beyond gets 409
                        (nothing is evicted: a peer's adapter stays)          default: 16
  --max-in-flight N     most requests between arrival and answer (503 beyond) default: 512
  --max-body-bytes N    largest request body (413 beyond)                     default: 67108864 (64 MiB)
  --max-body-bytes-in-flight N  bytes of bodies held by all requests together
                        (503 beyond)                                          default: 268435456 (256 MiB)

Once listening it prints one line to stdout: serving MODEL at http://HOST:PORT/v1

Adapters: like a vLLM started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, it
loads and unloads models at run time, without a restart (what a peer does after each iteration's
training). POST /v1/load_lora_adapter {"lora_name": NAME, "lora_path": PATH} opens the tiny
checkpoint at PATH under --adapter-dir (a directory holding model.bin, as the tiny trainer
writes it, or the .bin file itself) beside the base; requests then ask for it as "model": NAME,
and GET /v1/models lists it with "parent" the base. POST /v1/unload_lora_adapter {"lora_name": NAME} stops routing to it, lets
its queued requests finish and frees it. Both answer success as plain text, errors as vLLM does
(400 for a name already loaded or a path outside --adapter-dir or not a regular file, 404 for a
path with no adapter or an unknown name, 409 past --max-adapters, 422 for a checkpoint made for
another base: another member or architecture). "load_inplace": true swaps a loaded adapter's
weights under the same name: new requests get the new weights, queued ones finish on the old.

Example:
  pop serve --peer ocrdumb --adapter-dir /runs
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
  pop actor --peer ocrserved --backend openai --base-url http://127.0.0.1:8000/v1 --model ocrdumb`;

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
  const bounds: AdapterBounds = {
    root: resolve(flags.string("adapter-dir") ?? "pop-work"),
    maxBytes: flags.int("max-adapter-bytes", { min: 1 }) ?? 64 * 1024 * 1024,
  };
  const maxAdapters = flags.int("max-adapters", { min: 0, max: 100_000 });
  const maxInFlight = flags.int("max-in-flight", { min: 1, max: 1_000_000 });
  const maxBodyBytes = flags.int("max-body-bytes", { min: 1 });
  const maxBodyBytesInFlight = flags.int("max-body-bytes-in-flight", { min: 1 });
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
    const base = tinyLineage(typeof spec.weights === "string" ? new Uint8Array(await readFile(spec.weights)) : spec.weights);
    const openAdapter = (path: string) => openTinyAdapter(path, { peer, log }, bounds, base);
    server = await startOpenAiServer({
      backend,
      model,
      openAdapter,
      host,
      port,
      batchWindowMs,
      maxBatch,
      maxAdapters,
      maxInFlight,
      maxBodyBytes,
      maxBodyBytesInFlight,
      log,
    });
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
  log.info({ adapterDir: bounds.root }, "adapters load from under this folder only");
  process.stdout.write(`serving ${model} at ${running.url}/v1\n`);
}

/**
 * Opens a tiny "adapter" for `pop serve`'s /v1/load_lora_adapter: a directory holding the trained
 * checkpoint as model.bin (what the tiny trainer writes), or a checkpoint file itself, in a
 * worker thread of its own. Only a regular file under `bounds.root`, within its byte cap, is
 * read (actors/serve/adapter-files.ts); a leading ~ is the home folder, a relative path is taken
 * under the root. Throws AdapterNotFoundError (404) when there is nothing to load there,
 * AdapterPathError (400) for a path the server will not open, and with `base` (the served
 * checkpoint's lineage) AdapterBaseMismatchError (422) for an adapter of another base.
 */
export async function openTinyAdapter(path: string, context: PlugContext, bounds: AdapterBounds, base?: TinyLineage): Promise<ServableBackend> {
  const where = path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
  const weights = await readAdapterFile(bounds, where);
  if (base) {
    let mine: TinyLineage;
    try {
      mine = tinyLineage(weights);
    } catch (error) {
      throw new AdapterPathError(`'${path}' is not a tiny checkpoint: ${(error as Error).message}`);
    }
    const why = lineageMismatch(base, mine);
    if (why) throw new AdapterBaseMismatchError(`the adapter at '${path}' does not fit the served base: ${why}`);
  }
  const backend = await tinyPlug.open({ weights }, context);
  if (!canServe(backend)) {
    await backend.dispose();
    throw new Error("this backend does not report score distributions, which judge requests need");
  }
  return backend;
}
