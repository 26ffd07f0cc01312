/** What a model worker thread imports to run the tiny backend (see WorkerBackend.start). */
export { openTiny as openBackend } from "./plug.ts";
