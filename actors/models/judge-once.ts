/**
 * Judging each distinct (prompt, answer) once. Sampling k candidates at a moderate temperature
 * often repeats the same short answer, and a judge's scores depend only on the prompt and the
 * answer, so repeats are scored once and the scores shared. Works for every backend.
 */
import { ModelOutputError } from "./errors.ts";
import type { Judgement, JudgeInput, JudgeOptions, ModelBackend } from "./contract.ts";

/** Scores for `items` in order, asking `backend.judge` only for the distinct ones. */
export async function judgeOnce(backend: Pick<ModelBackend, "judge">, items: JudgeInput[], options?: JudgeOptions): Promise<Judgement[]> {
  const slot = new Map<string, number>();
  const unique: JudgeInput[] = [];
  const index = items.map((item) => {
    // prompt ids are stable and unique per prompt (see PromptInput.id)
    const key = `${item.prompt.id}\u0000${item.answer}`;
    let at = slot.get(key);
    if (at === undefined) {
      at = unique.length;
      slot.set(key, at);
      unique.push(item);
    }
    return at;
  });
  if (unique.length === 0) return [];
  const scores = await backend.judge(unique, options);
  if (scores.length !== unique.length) throw new ModelOutputError(`the judge returned ${scores.length} scores for ${unique.length} candidates`);
  return index.map((at) => scores[at]!);
}
