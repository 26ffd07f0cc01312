/** The roles a peer plays, each an object owning its state; the actor makes and stops them. */
import { Answering } from "./answering.ts";
import type { PeerContext } from "./context.ts";
import { Judging } from "./judging.ts";
import { Training } from "./training.ts";

/** One actor's roles, handed to its inboxes and to catch-up. */
export interface PeerRoles {
  readonly answering: Answering;
  readonly judging: Judging;
  readonly training: Training;
}

/** A fresh set of roles over a context. */
export function createRoles(ctx: PeerContext): PeerRoles {
  return { answering: new Answering(ctx), judging: new Judging(ctx), training: new Training(ctx) };
}

/** Stops every role; each closes what it owns (the judge's lingering timers, ...). */
export function stopRoles(roles: PeerRoles): void {
  roles.answering.stop();
  roles.judging.stop();
  roles.training.stop();
}
