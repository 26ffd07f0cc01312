/**
 * A trainer's side of settings.json (./contract.ts): read it back and check it against the
 * contract's schema, the one the actor's settings come from.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PopError } from "../../protocol/mod.ts";
import { TRAINER_FORMAT, TrainSettings, WORK_FILES } from "./contract.ts";

/** The work directory does not hold what the contract says it holds. */
export class WorkDirError extends PopError {}

/** `<workDir>/settings.json`, checked; a missing, malformed or other-format file says what is wrong. */
export function readTrainSettings(workDir: string): TrainSettings {
  const file = join(workDir, WORK_FILES.settings);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new WorkDirError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  // The format first: a file of another version is better told as such than as a list of issues.
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== TRAINER_FORMAT) throw new WorkDirError(`${file} is format '${String(format)}', this trainer reads '${TRAINER_FORMAT}'`);
  const parsed = TrainSettings.safeParse(raw);
  if (!parsed.success)
    throw new WorkDirError(`${file} is not the contract's settings: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}
