/** Errors of the actor. */
import { PopError } from "../protocol/mod.ts";

/** The actor cannot start: a bad option, a missing experiment, a checkpoint that won't load. */
export class ActorStartError extends PopError {}

/** A role of the actor was asked for work after the actor stopped; a later process will do it (the stream redelivers). */
export class RoleStoppedError extends PopError {
  constructor(role: string) {
    super(`the ${role} role has stopped`, { retryable: true });
  }
}
