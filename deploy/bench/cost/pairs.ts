/**
 * Pairs kept: how many of the reference pairs (every judge, per-criterion judging) a cheaper way
 * of judging gives identically (same prompt, pairing, chosen and rejected candidate). Fewer
 * judges per author is a revote of the stored verdicts (deploy/observe/revote); single-request
 * judging re-judges the same candidates in single mode through the same served models, so the
 * two modes see identical answers (the run's sampling is not repeatable).
 */
import { OpenAiBackend } from "../../../actors/models/openai/backend.ts";
import { judgeOnce } from "../../../actors/models/judge-once.ts";
import { JUDGE_TEMPERATURE } from "../../../actors/models/tiny/backend.ts";
import { CRITERIA, getImage, openBlobs, type ImageRef, type Verdict, type VotingConfig } from "../../../protocol/mod.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ImageInput } from "../../../actors/models/contract.ts";
import { revote } from "../../observe/revote/revote.ts";
import type { PanelRun } from "./panel.ts";

/** The run's verdicts judged again in single mode by the same judges' served models. */
export async function rejudgeSingle(
  nc: NatsConnection,
  run: PanelRun,
  urlOf: (model: string) => string,
  modelOf: (peer: string) => string,
): Promise<Verdict[]> {
  const blobs = await openBlobs(nc);
  const images = new Map<string, ImageInput>();
  const imageOf = async (ref: ImageRef) => {
    if (!images.has(ref.hash)) images.set(ref.hash, await getImage(blobs, ref));
    return images.get(ref.hash)!;
  };
  const prompts = new Map(run.prompts.map((p) => [p.promptId, p]));
  const batches = new Map(run.candidates.map((c) => [`${c.promptId}|${c.author}`, c]));
  const backends = new Map<string, OpenAiBackend>();
  try {
    const out: Verdict[] = [];
    for (const v of run.verdicts) {
      const model = modelOf(v.judge);
      let backend = backends.get(model);
      if (!backend) backends.set(model, (backend = await OpenAiBackend.open({ baseUrl: urlOf(model), model, judgeTemperature: JUDGE_TEMPERATURE })));
      const p = prompts.get(v.promptId)!;
      const input = { id: p.promptId, question: p.question, images: await Promise.all(p.images.map(imageOf)) };
      const cands = v.authors.flatMap((a) => batches.get(`${v.promptId}|${a}`)?.candidates ?? []);
      const judged = await judgeOnce(
        backend,
        cands.map((c) => ({ prompt: input, answer: c.text })),
        { ...run.config.judging, mode: "single" },
      );
      const scores = cands.map((c, i) => {
        const j = judged[i]!;
        if ("abstained" in j) return { candidateId: c.candidateId, abstained: j.abstained.slice(0, 1024) || "unreadable" };
        const likert = Object.fromEntries(CRITERIA.map((k) => [k, Math.min(5, Math.max(1, j.likert[k]))])) as Record<(typeof CRITERIA)[number], number>;
        return { candidateId: c.candidateId, likert };
      });
      out.push({ ...v, scores });
    }
    return out;
  } finally {
    for (const b of backends.values()) await b.dispose();
  }
}

/** One way of judging against the reference: its pairs and how many are the reference's own. */
export interface Kept {
  pairs: number;
  reference: number;
  same: number;
  /** same / reference (1 when the reference has no pairs). */
  share: number;
}

/** Votes `verdicts` with m judges per author and compares the pairs with the reference (per-criterion, all judges). */
export function pairsKept(run: PanelRun, voting: VotingConfig, verdicts: Verdict[], m: number | "all"): Kept {
  const vote = (vs: Verdict[], judgesPerAuthor: number | "all", pairs: PanelRun["pairs"]) =>
    revote({
      experiment: run.config.experiment,
      voting,
      judgesPerAuthor,
      panels: new Map([[1, run.peers]]),
      prompts: run.prompts,
      candidates: run.candidates,
      verdicts: vs,
      pairs,
    }).find((r) => r.iteration === 1);
  const reference = vote(run.verdicts, "all", [])?.revoted ?? [];
  const row = vote(verdicts, m, reference);
  const same = row?.same ?? 0;
  return { pairs: row?.revoted.length ?? 0, reference: reference.length, same, share: reference.length ? same / reference.length : 1 };
}
