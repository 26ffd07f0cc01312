/** The backend kinds this build ships: adding one is a folder under actors/ and a line here. */
import { BackendRegistry } from "../actors/backend/registry.ts";
import { openaiPlug } from "../actors/openai/plug.ts";
import { tinyPlug } from "../actors/tiny/plug.ts";

export const BACKENDS = new BackendRegistry().register(tinyPlug).register(openaiPlug);
