/** The `openai` backend kind: a model served by any OpenAI-compatible server. */
import { BackendConfigError, type BackendPlug } from "../registry.ts";
import { OpenAiBackend, type OpenAiBackendOptions } from "./backend.ts";

export const openaiPlug: BackendPlug<OpenAiBackendOptions> = {
  kind: "openai",
  summary: "a model served by vLLM, SGLang, llama.cpp's server, Ollama or `pop serve`: answers and judges; trains LoRA adapters with --trainer-cmd",
  options: [
    { flag: "base-url", value: "URL", help: "the server's API root, e.g. http://gpu1:8000/v1 (required)" },
    { flag: "model", value: "NAME", help: "the served model's name, as GET /v1/models lists it (required)" },
    { flag: "api-key-env", value: "VAR", help: "environment variable that holds the API key, if the server needs one" },
    { flag: "concurrency", value: "N", help: "requests in flight at once", default: "16" },
    { flag: "timeout-s", value: "S", help: "time limit of one request", default: "300" },
    { flag: "retries", value: "N", help: "retries on connection errors, timeouts, 429 and 5xx", default: "6" },
    { flag: "max-tokens", value: "N", help: "answer length bound when the experiment sets none", default: "512" },
    { flag: "top-logprobs", value: "N", help: "top_logprobs asked for when judging; 0 reads scores from the text", default: "10" },
    { flag: "judge-temperature", value: "T", help: "sharpening of the judge's digit distribution before the expected score", default: "1" },
    { flag: "wait-s", value: "S", help: "how long to wait at start for the server to come up", default: "600" },
    {
      flag: "trainer-cmd",
      value: "CMD",
      help: "train a LoRA adapter each iteration with CMD (trainer contract; $POP_TRAIN_DIR) and hot-load it; absent: no training",
    },
    { flag: "trainer-timeout-s", value: "S", help: "kill a trainer that runs longer", default: "86400" },
    { flag: "work-dir", value: "DIR", help: "training work directories and unpacked adapters; the server must see it", default: "./pop-work" },
  ],
  configure(read) {
    const baseUrl = read.string("base-url");
    const model = read.string("model");
    if (!baseUrl) throw new BackendConfigError("--backend openai needs --base-url URL (e.g. http://127.0.0.1:8000/v1)");
    if (!/^https?:\/\/[^/]+/.test(baseUrl)) throw new BackendConfigError(`--base-url must be an http:// or https:// URL, got '${baseUrl}'`);
    if (!model) throw new BackendConfigError("--backend openai needs --model NAME (the name the server lists at GET /v1/models)");
    const keyVar = read.string("api-key-env");
    const apiKey = keyVar ? process.env[keyVar] : undefined;
    if (keyVar && !apiKey) throw new BackendConfigError(`--api-key-env ${keyVar}: that environment variable is not set`);
    const seconds = (name: string, d: number) => (read.number(name, { min: 0.001 }) ?? d) * 1000;
    return {
      baseUrl,
      model,
      apiKey,
      concurrency: read.int("concurrency", { min: 1, max: 4096 }) ?? 16,
      timeoutMs: seconds("timeout-s", 300),
      retries: read.int("retries", { min: 0, max: 100 }) ?? 6,
      maxTokens: read.int("max-tokens", { min: 1 }) ?? 512,
      topLogprobs: read.int("top-logprobs", { min: 0, max: 20 }) ?? 10,
      judgeTemperature: read.number("judge-temperature", { min: 0, max: 10 }) ?? 1,
      startupWaitMs: seconds("wait-s", 600),
      trainerCmd: read.string("trainer-cmd"),
      trainerTimeoutMs: seconds("trainer-timeout-s", 86_400),
      workDir: read.string("work-dir"),
    };
  },
  open(spec, { log }) {
    return OpenAiBackend.open(spec, log);
  },
};
