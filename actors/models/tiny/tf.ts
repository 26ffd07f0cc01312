/**
 * tfjs engine set-up for the tiny model: the wasm backend (single-threaded in Node), falling
 * back to the pure-JS cpu backend with a logged warning when wasm cannot start.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";

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
