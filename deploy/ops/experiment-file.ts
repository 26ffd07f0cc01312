/**
 * Reading a user's experiment config file (`--config FILE` of `pop coordinator` and `pop plan`):
 * JSON with only the settings that matter; misspelt settings are refused, the envelope fields
 * and empty sections are filled in.
 */
import { readFileSync } from "node:fs";
import { ExperimentConfig, PROTOCOL_VERSION, PopError } from "../../protocol/mod.ts";
import { unknownConfigKeys } from "./experiment.ts";

/** The file cannot be read, is not JSON, or is not a valid experiment config; the message says which setting. */
export class ExperimentFileError extends PopError {}

/** The experiment config in `file`, for experiment `experiment`. Throws {@link ExperimentFileError}. */
export function readExperimentFile(file: string, experiment: string): ExperimentConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ExperimentFileError(`cannot read --config ${file}: ${(error as Error).message}`, { cause: error });
  }
  const unknown = unknownConfigKeys(raw);
  if (unknown.length)
    throw new ExperimentFileError(
      `--config ${file}: unknown setting${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `'${k}'`).join(", ")} (see deploy/ops/experiment.example.json for the known ones)`,
    );
  const filled = {
    v: PROTOCOL_VERSION,
    type: "experiment",
    experiment,
    createdAt: Date.now(),
    voting: {},
    training: {},
    judging: {},
    deadlines: {},
    heartbeat: {},
    ...(raw as object),
  };
  const parsed = ExperimentConfig.safeParse(filled);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(config)"}: ${i.message}`).join("\n");
    throw new ExperimentFileError(`--config ${file} is not a valid experiment config:\n${problems}`);
  }
  return parsed.data;
}
