/**
 * `pop demo --hostile MODE`: one more member beside the shipped panel that answers and trains like
 * the others but judges adversarially (`pop actor --hostile-judge MODE`), to see whether the panel
 * still learns with a bad judge inside it. Kept apart from demo.ts: the demo only asks this file
 * for the extra member and the voting rule.
 */
import { UsageError } from "../cli/args.ts";
import { HOSTILE_JUDGES, type HostileJudge } from "../../actors/models/hostile.ts";
import { shippedCheckpoint } from "../../actors/models/tiny/checkpoints.ts";
import { AGGREGATES, type VotingConfig } from "../../protocol/mod.ts";

/** The hostile member's peer name. */
export const HOSTILE_PEER = "mallory";

/**
 * Whose shipped checkpoint the hostile member answers and judges with: lostspace, the member with
 * the best average before training, so its answers are no weaker than the panel's (what the honest
 * members gain or lose is its judging's doing) and its inverted judgement, from the panel's
 * best judge, is the most consistently wrong.
 */
export const HOSTILE_CHECKPOINT_OF = "lostspace";

/**
 * The voting rule of a panel with a hostile member unless --aggregate says otherwise: with an
 * inverting member it kept all of the all-honest panel's gain in `npm run demo:hostile` (median
 * 98%, mean 10%; docs/measuring.md has both modes' runs). The trusted demo keeps the paper's mean.
 */
export const UNTRUSTED_AGGREGATE: VotingConfig["aggregate"] = "agreement";

/** A member the demo starts besides the shipped panel. */
export interface ExtraMember {
  peer: string;
  checkpoint: string;
  /** `pop actor` options on top of the demo's own. */
  args: string[];
  /** Its hostile judging mode. */
  mode: HostileJudge;
}

/** `--hostile MODE` checked: the mode, or undefined when not given. */
export function hostileMode(value: string | undefined, help: string): HostileJudge | undefined {
  if (value === undefined) return undefined;
  if (!(HOSTILE_JUDGES as readonly string[]).includes(value)) throw new UsageError(`--hostile must be one of ${HOSTILE_JUDGES.join(", ")}`, help);
  return value as HostileJudge;
}

/** `--aggregate RULE` checked; the default depends on whether a hostile member is in the panel. */
export function aggregateRule(value: string | undefined, hostile: boolean, fallback: VotingConfig["aggregate"], help: string): VotingConfig["aggregate"] {
  if (value === undefined) return hostile ? UNTRUSTED_AGGREGATE : fallback;
  if (!(AGGREGATES as readonly string[]).includes(value)) throw new UsageError(`--aggregate must be one of ${AGGREGATES.join(", ")}`, help);
  return value as VotingConfig["aggregate"];
}

/**
 * The hostile member for a panel of `peers`: {@link HOSTILE_PEER} on {@link HOSTILE_CHECKPOINT_OF}'s
 * checkpoint in `checkpointDir` (the first member's where that one is missing).
 */
export function hostileMember(mode: HostileJudge, peers: readonly string[], checkpointDir: string | undefined, help: string): ExtraMember {
  if (peers.includes(HOSTILE_PEER)) throw new UsageError(`--hostile adds a member named '${HOSTILE_PEER}'; the panel already has one`, help);
  const checkpoint =
    shippedCheckpoint(HOSTILE_CHECKPOINT_OF, checkpointDir) ?? (peers[0] !== undefined ? shippedCheckpoint(peers[0], checkpointDir) : undefined);
  if (!checkpoint) throw new UsageError(`--hostile needs a checkpoint for ${HOSTILE_PEER} (${HOSTILE_CHECKPOINT_OF}.bin)`, help);
  return { peer: HOSTILE_PEER, checkpoint, args: ["--hostile-judge", mode], mode };
}
