/**
 * One `pop serve` for the whole cost bench: the first shipped member as its base model and the
 * others loaded beside it as adapters (vLLM's runtime LoRA endpoints take a checkpoint file), so
 * every member of any panel size asks one server for one of the shipped models by name.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { shippedCheckpoint, shippedMembers } from "../../../actors/models/tiny/checkpoints.ts";
import { PopProcess } from "../../cli/processes.ts";

/** A running `pop serve` with every shipped model. */
export interface CostServer {
  /** The API root, `http://127.0.0.1:PORT/v1`. */
  baseUrl: string;
  /** The served models' names, the base first. */
  models: string[];
  process: PopProcess;
  stop(): Promise<void>;
}

/** Starts the server (any free port) and loads the other shipped members as adapters. */
export async function startCostServer(dir: string, timeoutMs = 120_000): Promise<CostServer> {
  const models = shippedMembers();
  if (models.length === 0) throw new Error("the shipped checkpoints are missing (actors/models/tiny/checkpoints)");
  const log = join(dir, "serve.log");
  // The other members load from the shipped checkpoints' folder, the only one the server may read adapters from.
  const adapterDir = dirname(shippedCheckpoint(models[0]!)!);
  const proc = new PopProcess("serve", ["serve", "--peer", models[0]!, "--port", "0", "--log-format", "json", "--adapter-dir", adapterDir], log);
  const deadline = Date.now() + timeoutMs;
  let baseUrl: string | undefined;
  while (!baseUrl) {
    if (!proc.running) throw new Error(`pop serve ended early:\n${proc.logTail()}`);
    if (Date.now() > deadline) throw new Error(`pop serve did not come up in ${timeoutMs / 1000} s:\n${proc.logTail()}`);
    // Its one stdout line, in the log it shares with stderr.
    baseUrl = /serving \S+ at (http:\/\/\S+\/v1)/.exec(readFileSync(log, "utf8"))?.[1];
    if (!baseUrl) await new Promise((r) => setTimeout(r, 200));
  }
  for (const m of models.slice(1)) {
    const res = await fetch(`${baseUrl.replace(/\/v1$/, "")}/v1/load_lora_adapter`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ lora_name: m, lora_path: shippedCheckpoint(m) }),
    });
    if (!res.ok) throw new Error(`pop serve refused to load ${m}: ${res.status} ${await res.text()}`);
  }
  return { baseUrl, models, process: proc, stop: () => proc.stop(5000) };
}

/** Member `i` of a panel: the shipped names first, then `<model>-<round>` around them again. */
export function memberOf(i: number, models: readonly string[]): { peer: string; model: string } {
  const model = models[i % models.length]!;
  const round = Math.floor(i / models.length);
  return { peer: round === 0 ? model : `${model}-${round}`, model };
}
