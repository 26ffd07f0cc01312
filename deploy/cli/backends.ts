/** The backend kinds this build ships: adding one is a folder under actors/ and a line here. */
import { BackendRegistry } from "../../actors/models/registry.ts";
import { openaiPlug } from "../../actors/models/openai/plug.ts";
import { processPlug } from "../../actors/models/process/plug.ts";
import { tinyPlug } from "../../actors/models/tiny/plug.ts";

export const BACKENDS = new BackendRegistry().register(tinyPlug).register(openaiPlug).register(processPlug);
