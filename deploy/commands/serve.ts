/** `pop serve`: a tiny checkpoint behind an OpenAI-compatible HTTP API (vLLM's dialect). */
import { basename, extname } from "node:path";
import { BackendConfigError } from "../../actors/backend/registry.ts";
import { canServe, startOpenAiServer } from "../../actors/serve/openai-server.ts";
import { shippedMembers } from "../../actors/tiny/checkpoints.ts";
import { tinyPlug } from "../../actors/tiny/plug.ts";
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
  --log-format F        text or json                                          default: text
  (POP_LOG_LEVEL=debug logs one line per request; a summary comes every 10 s at info.)

Once listening it prints one line to stdout: serving MODEL at http://HOST:PORT/v1

Example:
  pop serve --peer ocrdumb
  curl -s http://127.0.0.1:8000/v1/models
  curl -s http://127.0.0.1:8000/v1/chat/completions -H 'content-type: application/json' -d '{
    "model": "ocrdumb", "n": 3, "seed": 1,
    "messages": [{"role": "user", "content": [
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,'"$(base64 -w0 scene.png)"'"}},
      {"type": "text", "text": "what color is the circle"}]}]}'

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
    spec = tinyPlug.configure(flags, { peer, log });
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
    server = await startOpenAiServer({ backend, model, host, port, batchWindowMs, maxBatch, log });
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
