/**
 * The dataset card (README.md) of an exported pairs folder: YAML front matter the Hugging Face
 * Hub and `load_dataset(DIR)` read (one split per iteration, the features with the Image
 * feature, a license placeholder, tags), how the pairs were made, and the commands that load
 * and train on them.
 */
import type { ExperimentConfig } from "../../../protocol/mod.ts";
import { PAIR_FEATURES, featuresYaml } from "./features.ts";

/** What the card says about one exported iteration. */
export interface CardSplit {
  iteration: number;
  /** The Parquet file's name in the folder. */
  file: string;
  pairs: number;
}

/** The split an iteration's pairs are under. */
export const splitName = (iteration: number): string => `iter${iteration}`;

/** The `trl` command line that trains on one split of the folder (DPO: the TRL CLI's preference trainer). */
export function trlCommand(dir: string, split: string, experiment: string): string {
  return [
    "trl dpo",
    "--model_name_or_path Qwen/Qwen2.5-VL-3B-Instruct",
    `--dataset_name ${shellWord(dir)}`,
    `--dataset_train_split ${split}`,
    "--use_peft --lora_r 16 --lora_alpha 32",
    "--per_device_train_batch_size 2 --gradient_accumulation_steps 8",
    "--learning_rate 5e-6 --num_train_epochs 1 --gradient_checkpointing",
    `--output_dir ${shellWord(`pop-${experiment}-${split}`)}`,
  ].join(" \\\n  ");
}

/** The one line that loads the folder's Parquet files, one split per iteration, from any directory. */
export function loadDatasetLine(dir: string, splits: readonly CardSplit[]): string {
  const files = splits.map((s) => `${JSON.stringify(splitName(s.iteration))}: ${JSON.stringify(`${dir}/${s.file}`)}`).join(", ");
  return `load_dataset("parquet", data_files={${files}})`;
}

/** The card's text. `dir` is the folder's absolute path (the commands name it); `config` the run's settings where stored. */
export function datasetCard(dir: string, experiment: string, splits: readonly CardSplit[], config?: ExperimentConfig): string {
  const total = splits.reduce((a, s) => a + s.pairs, 0);
  const last = splits.at(-1);
  const voting = config?.voting;
  const front = [
    "---",
    "# Placeholder: set the license of the prompts and images this run used before sharing.",
    "license: other",
    "pretty_name: " + yamlString(`Panel-of-Peers preference pairs (${experiment})`),
    "language:",
    "- en",
    "task_categories:",
    "- image-text-to-text",
    "tags:",
    ...["preference", "dpo", "simpo", "vision", "trl", "panel-of-peers", "synthetic"].map((t) => `- ${t}`),
    // No pairs at all: no data files to name (an empty `data_files` is not a valid config).
    ...(splits.length
      ? ["configs:", "- config_name: default", "  data_files:", ...splits.flatMap((s) => [`  - split: ${splitName(s.iteration)}`, `    path: ${s.file}`])]
      : []),
    "dataset_info:",
    "  features:",
    ...featuresYaml(PAIR_FEATURES, 2),
    ...(splits.length ? ["  splits:", ...splits.flatMap((s) => [`  - name: ${splitName(s.iteration)}`, `    num_examples: ${s.pairs}`])] : []),
    "---",
  ];
  const how = [
    `Preference pairs made by a Panel-of-Peers run (experiment \`${experiment}\`): ${total} pair${total === 1 ? "" : "s"} over ${splits.length} iteration${splits.length === 1 ? "" : "s"}, one split per iteration (\`iter<N>\`, file \`pairs-iter<N>.parquet\`).`,
    "",
    "## How the pairs were made",
    "",
    "Each member of a panel of vision-language models answered every unlabeled prompt of the iteration (an image and a question) several times. " +
      "Every member then scored the other members' answers on five 1-5 Likert criteria (helpfulness, correctness, coherence, complexity, verbosity). " +
      "A judge's scores are normalised to [0, 1] and combined over the criteria; an answer's score is the " +
      (voting ? `${voting.aggregate} over its judges (criteria combined by ${voting.combine})` : "mean over its judges") +
      ". Per prompt" +
      (voting?.pairing === "per-member" ? " and author" : " (pooled over the panel)") +
      ", the best-scored answer is `chosen` and the worst `rejected`; the pair is kept only if chosen scores at least " +
      (voting ? `${voting.minChosen} and beats rejected by at least ${voting.minMargin}` : "the run's minimum and beats rejected by its minimum margin") +
      ". Empty answers and identical texts are never paired. Authors do not judge their own answers" +
      (voting?.selfJudging ? " unless self-judging is on (it was, in this run)" : "") +
      ". The members then trained on the iteration's pairs with SimPO, and the next iteration's answers came from the trained members.",
    "",
    "## Columns",
    "",
    '- `prompt`, `chosen`, `rejected`: TRL\'s conversational preference format. `prompt` is one user turn whose content is one `{"type": "image"}` part per image, then the question as a `{"type": "text"}` part; `chosen` and `rejected` are one assistant turn each.',
    "- `images`: the prompt's images (the `datasets` Image feature: PNG bytes, or the pool's own JPEG).",
    "- `experiment`, `iteration`, `prompt_id`, `pair_id`: where the pair comes from; `suite`: the prompt's task family where the run's world can tell; `for_peer`: the member the pair is for under per-member pairing.",
    "- `chosen_author`, `rejected_author`: the members that wrote the answers; `score_chosen`, `score_rejected`, `margin`: the voted scores in [0, 1] and their difference.",
    "- `judges`: the members whose verdicts were counted; `judge_scores`: each one's own combined score of the chosen and rejected answers (null where it did not score one: its own answer, or it abstained).",
    "",
    "## Load",
    "",
    "```python",
    "from datasets import load_dataset",
    ...(splits.length ? [loadDatasetLine(dir, splits)] : []),
    `# or, through this card's configs: load_dataset(${JSON.stringify(dir)})`,
    "```",
    "",
    "The images are embedded, so the folder can be moved, or uploaded to the Hub, as it is.",
    "",
    "## Train",
    "",
    "With TRL's command line (DPO, with a frozen reference model; a TRL whose `dpo` command loads vision-language models):",
    "",
    "```bash",
    trlCommand(dir, last ? splitName(last.iteration) : "iter1", experiment),
    "```",
    "",
    'SimPO, which the panel itself trains with, is TRL\'s `CPOTrainer` with `loss_type="simpo"` and `cpo_alpha=0`; TRL has no command line for it, and it takes no images. ' +
      "For SimPO on these pairs with their images, use Panel-of-Peers' own LoRA trainer (actors/trainers/python/simpo_lora.py).",
    "",
  ];
  return [...front, "", `# Panel-of-Peers preference pairs: ${experiment}`, "", ...how].join("\n");
}

/** A YAML scalar in double quotes (JSON's escaping is valid YAML). */
const yamlString = (s: string): string => JSON.stringify(s);

/** A word for a POSIX shell: as it is when safe, else single-quoted. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
