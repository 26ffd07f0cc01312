/**
 * The cost bench's model servers: one `pop serve` per shipped member, each serving its own model
 * (a server refuses an adapter made for another base, as vLLM does), so every member of any panel
 * size asks the server of one of the shipped models.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { shippedMembers } from "../../../actors/models/tiny/checkpoints.ts";
import { PopProcess } from "../../cli/processes.ts";

/** The running servers, one per shipped model. */
export interface CostServer {
  /** The served models' names. */
  models: string[];
  /** The API root of the server of `model`, `http://127.0.0.1:PORT/v1`. */
  urlOf(model: string): string;
  stop(): Promise<void>;
}

/** Starts one server (any free port) per shipped member; all or none. */
export async function startCostServer(dir: string, timeoutMs = 120_000): Promise<CostServer> {
  const models = shippedMembers();
  if (models.length === 0) throw new Error("the shipped checkpoints are missing (actors/models/tiny/checkpoints)");
  const procs = new Map<string, PopProcess>();
  const stop = async () => {
    await Promise.all([...procs.values()].map((p) => p.stop(5000)));
  };
  try {
    for (const m of models)
      procs.set(m, new PopProcess(`serve-${m}`, ["serve", "--peer", m, "--port", "0", "--log-format", "json"], join(dir, `serve-${m}.log`)));
    const urls = new Map<string, string>();
    const deadline = Date.now() + timeoutMs;
    for (const [m, proc] of procs) {
      for (;;) {
        if (!proc.running) throw new Error(`pop serve of ${m} ended early:\n${proc.logTail()}`);
        if (Date.now() > deadline) throw new Error(`pop serve of ${m} did not come up in ${timeoutMs / 1000} s:\n${proc.logTail()}`);
        // Its one stdout line, in the log it shares with stderr.
        const url = /serving \S+ at (http:\/\/\S+\/v1)/.exec(readFileSync(join(dir, `serve-${m}.log`), "utf8"))?.[1];
        if (url) {
          urls.set(m, url);
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const urlOf = (model: string) => {
      const url = urls.get(model);
      if (!url) throw new Error(`no server for model ${model}`);
      return url;
    };
    return { models, urlOf, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Member `i` of a panel: the shipped names first, then `<model>-<round>` around them again. */
export function memberOf(i: number, models: readonly string[]): { peer: string; model: string } {
  const model = models[i % models.length]!;
  const round = Math.floor(i / models.length);
  return { peer: round === 0 ? model : `${model}-${round}`, model };
}
