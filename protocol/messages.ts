/**
 * Constructors of protocol messages: the envelope fields (`v`, `type`, `experiment`, the time)
 * are filled in here, so a sender writes only what the message says.
 */
import type { ControlEvent } from "./schemas.ts";
import type { ControlEventName } from "./subjects.ts";
import { PROTOCOL_VERSION } from "./version.ts";

type ControlOf<E extends ControlEventName> = Extract<ControlEvent, { event: E }>;

/** The fields of a control event a sender chooses; `at` defaults to now. */
export type ControlBody<E extends ControlEventName> = Omit<ControlOf<E>, "v" | "type" | "experiment" | "event" | "at"> & { at?: number };

/** A control event of `experiment`. */
export function controlEvent<E extends ControlEventName>(experiment: string, event: E, body: ControlBody<E>): ControlOf<E> {
  return { v: PROTOCOL_VERSION, type: "control", experiment, event, at: Date.now(), ...body } as ControlOf<E>;
}
