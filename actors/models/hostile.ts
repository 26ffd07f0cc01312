/**
 * Broken or hostile judges, for robustness experiments (`pop actor --hostile-judge MODE`): the
 * peer answers and trains as usual but its verdicts are corrupted. "invert" mirrors every score
 * (1<->5, 2<->4), "all-5" gives every candidate top marks, "random" scores at random (fixed per
 * prompt and answer, so a redelivery scores alike). The voting rules of coordinator/voting.ts
 * are measured against these.
 */
import { createHash } from "node:crypto";
import { CRITERIA, type LikertScores } from "../../protocol/mod.ts";
import type { Judgement, JudgeInput, JudgeOptions, ModelBackend } from "./contract.ts";

export const HOSTILE_JUDGES = ["invert", "all-5", "random"] as const;
export type HostileJudge = (typeof HOSTILE_JUDGES)[number];

const likert = (score: (c: (typeof CRITERIA)[number]) => number): LikertScores => Object.fromEntries(CRITERIA.map((c) => [c, score(c)])) as LikertScores;

/** Corrupts honest judgements as `mode` says. */
export function corrupt(mode: HostileJudge, items: JudgeInput[], honest: Judgement[]): Judgement[] {
  return honest.map((j, i) => {
    if (mode === "all-5") return { likert: likert(() => 5) };
    if (mode === "random") {
      const item = items[i]!;
      return { likert: likert((c) => 1 + (createHash("sha256").update(`${item.prompt.id}\0${item.answer}\0${c}`).digest()[0]! % 5)) };
    }
    return "likert" in j ? { likert: likert((c) => 6 - j.likert[c]) } : j;
  });
}

/** `backend` with its judge replaced by a hostile one; everything else is the backend's own. */
export function withHostileJudge<B extends ModelBackend>(backend: B, mode: HostileJudge): B {
  const judge = async (items: JudgeInput[], options?: JudgeOptions) =>
    corrupt(mode, items, mode === "invert" ? await backend.judge(items, options) : items.map(() => ({ abstained: "" })));
  return new Proxy(backend, {
    get(target, property, receiver) {
      if (property === "judge") return judge;
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
