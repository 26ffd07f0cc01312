// Worker entry point. Node 20 does not apply the parent's TypeScript loader to a worker's entry
// file, so this plain module registers tsx for the worker and loads the real entry.
import { tsImport } from "tsx/esm/api";

await tsImport("./main.ts", import.meta.url);
