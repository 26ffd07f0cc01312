/**
 * tfjs engine set-up for the tiny model: the wasm backend (single-threaded in Node), falling
 * back to the pure-JS cpu backend with a logged warning when wasm cannot start.
 *
 * Only tfjs-core and the two backends are loaded, not the `@tensorflow/tfjs` umbrella (layers,
 * converter, data, webgl: unused here). The umbrella's side effects the model needs are the
 * gradients and the chained ops (`x.reshape()`, used inside gradients): tfjs-core's Node bundle
 * ships neither, only its ES module tree does, and that tree needs a resolve hook to load in Node
 * (tfjs-core-resolve.mjs). Both copies of tfjs-core keep the engine, the Tensor class and the
 * kernel and gradient registries in one process-wide global, so what the tree registers serves
 * the bundle's ops (the same weights and losses to the bit as with the umbrella, on both backends).
 */
import { register } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";

// after the static imports: the hook must not touch the bundle loaded above
register("./tfjs-core-resolve.mjs", import.meta.url);
await import("@tensorflow/tfjs-core/dist/register_all_gradients.js");
await import("@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js");

let ready: Promise<string> | undefined;

/** Initialise tfjs once per process; resolves to the backend name in use ("wasm" or "cpu"). */
export function initTf(preferred: "wasm" | "cpu" = (process.env.TINY_TF_BACKEND as "wasm" | "cpu") ?? "wasm"): Promise<string> {
  if (!ready) {
    ready = (async () => {
      if (preferred === "wasm") {
        try {
          const ok = await tf.setBackend("wasm");
          if (!ok) throw new Error("setBackend('wasm') returned false");
          await tf.ready();
          return tf.getBackend();
        } catch (err) {
          console.warn(`[tiny] wasm backend failed to initialise (${(err as Error).message}); falling back to the cpu backend (3-20x slower)`);
        }
      }
      await tf.setBackend("cpu");
      await tf.ready();
      return tf.getBackend();
    })();
  }
  return ready;
}

export { tf };
