/**
 * Telling the panel that this member will not do a piece of work its model failed on for good
 * (the delivery went to the dead letters), so that the coordinator votes the prompt without it
 * instead of waiting for the vote deadline.
 */
import { controlEvent, publishMessage, type DeadLetter } from "../protocol/mod.ts";
import type { PeerContext } from "./context.ts";

export interface AbandonedWork {
  iteration: number;
  promptId: string;
  work: "answer" | "judge";
  /** For "judge": whose batch. */
  author?: string;
  reason: string;
}

export async function giveUp(ctx: PeerContext, deadReason: DeadLetter["reason"], w: AbandonedWork): Promise<void> {
  // What was refused (an outsider's batch, a malformed message) was never this member's work.
  if (deadReason !== "handler_failed") return;
  if (w.work === "judge" && w.author === ctx.peer) return;
  if (!(await ctx.takesPart(w.iteration))) return;
  ctx.log.warn(
    { iteration: w.iteration, promptId: w.promptId, work: w.work, author: w.author, reason: w.reason },
    "gave up on this work; the coordinator will not wait for it",
  );
  const { author, ...rest } = w;
  await publishMessage(
    ctx.js,
    controlEvent(ctx.experiment, "gave_up", { ...rest, ...(author ? { author } : {}), peer: ctx.peer, reason: w.reason.slice(0, 1024) }),
  );
}
