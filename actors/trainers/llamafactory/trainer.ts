/**
 * LLaMA-Factory (hiyouga/LLaMA-Factory) files for a trainer work directory, so that a user who
 * already trains with that tool can run one iteration's SimPO LoRA training with it instead of
 * our trainer: {@link writeLlamaFactoryFiles} reads `pairs.jsonl` from the work directory and
 * writes `llamafactory/dataset.json` (sharegpt preference records with images),
 * `llamafactory/dataset_info.json` and `llamafactory/simpo_lora.yaml`. The user runs
 * `llamafactory-cli train <work>/llamafactory/simpo_lora.yaml` (from any directory: every path in
 * the files is absolute). Its `output_dir` is the contract's `settings.output_dir`, where
 * LLaMA-Factory's final `trainer.save_model()` puts the peft adapter (`adapter_config.json` +
 * `adapter_model.safetensors`, next to its own logs and `trainer_state.json`), and with
 * `init_adapter` set it continues training that adapter (`adapter_name_or_path`). What the
 * contract still needs is `metrics.json`, which `actors/trainers/llamafactory/metrics.ts` makes
 * from LLaMA-Factory's logs, so a whole `--trainer-cmd` can be
 * `npx tsx actors/trainers/llamafactory/trainer.ts --model Qwen/Qwen2-VL-7B-Instruct --template qwen2_vl
 * && llamafactory-cli train $POP_TRAIN_DIR/llamafactory/simpo_lora.yaml
 * && npx tsx actors/trainers/llamafactory/metrics.ts $POP_TRAIN_DIR`
 * (this file's command line reads `settings.json` from `--work` or `$POP_TRAIN_DIR`).
 *
 * Mapping (confirmed in LLaMA-Factory's hparams/finetuning_args.py and train/dpo/trainer.py):
 * `stage: dpo` + `pref_loss: simpo` (no reference model), beta → `pref_beta`, gamma →
 * `simpo_gamma` **unchanged** (its SimPO loss is -logsigmoid(beta·(logp_w - logp_l - gamma/beta)),
 * i.e. gamma is the absolute margin, as ours), sft_weight → `pref_ftx` (it adds pref_ftx × the
 * chosen answer's length-normalised NLL, as ours), batch_size → per_device_train_batch_size ×
 * gradient_accumulation_steps (one process; on N GPUs divide by N yourself).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { simpoOptionsFromFile, TRAINER_FORMAT, WORK_FILES, type TrainSettings } from "../contract.ts";
import { readTrainSettings } from "../settings-file.ts";

/** Folder inside the work directory that holds the LLaMA-Factory files (it is their `dataset_dir`). */
export const LLAMAFACTORY_DIR = "llamafactory";
/** The dataset's name in dataset_info.json and in the config's `dataset`/`eval_dataset`. */
export const LLAMAFACTORY_DATASET = "pop_pairs";
export const LLAMAFACTORY_FILES = { dataset: "dataset.json", datasetInfo: "dataset_info.json", config: "simpo_lora.yaml" } as const;

/** LLaMA-Factory's default media placeholders (extras/constants.py; overridable there by env vars, which we assume unset). */
const PLACEHOLDERS = ["<image>", "<video>", "<audio>"] as const;

export interface LlamaFactoryOptions {
  /** Hugging Face id or local path of the base weights (settings.base_model is the served name, which may differ). */
  modelNameOrPath: string;
  /** LLaMA-Factory chat template matching the model, e.g. `qwen2_vl`, `llava`, `qwen3_vl_nothink`. */
  template: string;
  /** Default 8. Ignored by LLaMA-Factory when it continues `init_adapter` (that adapter's own config wins). */
  loraRank?: number;
  /** Default `all` (every linear layer); comma-separated module names otherwise. */
  loraTarget?: string;
  /** Pairs per device per forward pass (default 1); lowered to the largest divisor of batch_size. */
  perDeviceBatch?: number;
  /** Default true. */
  bf16?: boolean;
  /**
   * Default true: evaluate the length-normalised margin on all pairs before training
   * (`eval_on_start`) and after it (LLaMA-Factory's final `do_eval`), which
   * llamafactory-metrics.ts reports as margin_before/margin_after. It costs two forward passes
   * over the pairs; without it those are the first/last training batch's margins.
   */
  evalMargins?: boolean;
  /** More config keys (e.g. `trust_remote_code: true`, `image_max_pixels`, `cutoff_len`); may not repeat a written key. */
  extra?: Record<string, YamlScalar>;
}

export interface LlamaFactoryPaths {
  dir: string;
  dataset: string;
  datasetInfo: string;
  config: string;
}

// ---------------------------------------------------------------------------------------------
// A minimal YAML emitter: a flat mapping of scalars, with comment lines.

export type YamlScalar = string | number | boolean | null;
export type YamlLine = { comment: string } | { key: string; value: YamlScalar; float?: boolean };

/**
 * A double-quoted YAML scalar. Everything but printable ASCII is escaped (\uXXXX / \UXXXXXXXX),
 * so PyYAML's reader (which rejects some non-printable characters) and its YAML 1.1 implicit
 * typing (`no`, `on`, `1e-5`, `null`, ...) never see anything but a plain string. LLaMA-Factory
 * loads the file with OmegaConf, which treats `${...}` in any string as an interpolation: we refuse
 * such strings rather than emit something OmegaConf would rewrite or reject.
 */
export function yamlString(s: string): string {
  if (s.includes("${")) throw new Error(`YAML value ${JSON.stringify(s)} contains "\${", which OmegaConf would read as an interpolation`);
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) throw new Error(`YAML value ${JSON.stringify(s)} contains a lone surrogate`);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (cp >= 0x20 && cp <= 0x7e) out += ch;
    else if (cp <= 0xffff) out += "\\u" + cp.toString(16).padStart(4, "0");
    else out += "\\U" + cp.toString(16).padStart(8, "0");
  }
  return out + '"';
}

/** A YAML 1.1 number: floats always carry a `.` and a signed exponent when they have one (PyYAML reads `1e-7` as a string). */
export function yamlNumber(x: number, float = false): string {
  if (!Number.isFinite(x)) throw new Error(`YAML number must be finite, got ${x}`);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return float ? `${x}.0` : String(x);
  const s = String(x);
  const e = s.indexOf("e");
  if (e < 0) return s;
  let mantissa = s.slice(0, e);
  let exponent = s.slice(e + 1);
  if (!mantissa.includes(".")) mantissa += ".0";
  if (exponent[0] !== "+" && exponent[0] !== "-") exponent = "+" + exponent;
  return `${mantissa}e${exponent}`;
}

export function yamlScalar(v: YamlScalar, float = false): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return yamlNumber(v, float);
  return yamlString(v);
}

/** Emits a flat mapping; keys must be plain identifiers and unique. */
export function toYaml(lines: YamlLine[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of lines) {
    if ("comment" in line) {
      // One comment line each; control characters (a newline would end the comment) become spaces.
      out.push(`# ${line.comment.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ")}`.trimEnd());
      continue;
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(line.key)) throw new Error(`YAML key ${JSON.stringify(line.key)} is not a plain identifier`);
    if (seen.has(line.key)) throw new Error(`YAML key ${line.key} given twice`);
    seen.add(line.key);
    out.push(`${line.key}: ${yamlScalar(line.value, line.float)}`);
  }
  return out.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// pairs.jsonl (TRL conversational vision shape) → LLaMA-Factory sharegpt preference records.

type Part = { type: string; text?: string };
type Message = { role: string; content: string | Part[] };

interface SharegptTurn {
  from: "system" | "human" | "gpt";
  value: string;
}

/** A sharegpt preference record as LLaMA-Factory's SharegptDatasetConverter reads it. */
export interface SharegptPreferenceRecord {
  conversations: SharegptTurn[];
  chosen: SharegptTurn;
  rejected: SharegptTurn;
  images: string[];
}

/**
 * Text that would otherwise be counted as a media placeholder (LLaMA-Factory counts them in every
 * message and fails when the count differs from the images) gets a space: `<image>` → `< image>`.
 */
export function neutralisePlaceholders(text: string): string {
  let out = text;
  for (const p of PLACEHOLDERS) out = out.split(p).join(`< ${p.slice(1)}`);
  return out;
}

function messageText(msg: Message, where: string, allowImages: boolean): { text: string; images: number } {
  if (typeof msg.content === "string") return { text: neutralisePlaceholders(msg.content), images: 0 };
  if (!Array.isArray(msg.content)) throw new Error(`${where}: content is neither a string nor a list of parts`);
  let text = "";
  let images = 0;
  for (const part of msg.content) {
    if (part.type === "image") {
      if (!allowImages) throw new Error(`${where}: images are only supported in user turns`);
      text += PLACEHOLDERS[0];
      images++;
    } else if (part.type === "text" && typeof part.text === "string") {
      text += neutralisePlaceholders(part.text);
    } else {
      throw new Error(`${where}: unsupported content part ${JSON.stringify(part.type)}`);
    }
  }
  return { text, images };
}

function answerTurn(value: unknown, where: string): SharegptTurn {
  const msgs = (Array.isArray(value) ? value : [value]) as Message[];
  if (msgs.length !== 1 || !msgs[0] || msgs[0].role !== "assistant") throw new Error(`${where}: expected one assistant message`);
  return { from: "gpt", value: messageText(msgs[0], where, false).text };
}

/**
 * One pairs.jsonl record → a sharegpt preference record. Image parts become `<image>` at their
 * place in the user text (images before the question, as the contract writes them), and the image
 * paths become absolute: LLaMA-Factory (data/converter.py `_find_medias`) joins each path to
 * `media_dir` (default: `dataset_dir`, here `<work>/llamafactory`) and, when that file does not
 * exist, keeps the path as given, which PIL then opens relative to the current directory. Our
 * paths are relative to the work directory, so neither works for them; `os.path.join(media_dir,
 * absolute)` is the absolute path itself, so absolute paths load the same whatever `media_dir`,
 * `dataset_dir` or the directory the user runs `llamafactory-cli` from.
 */
export function toSharegptRecord(pair: Record<string, unknown>, workDir: string, where = "pair"): SharegptPreferenceRecord {
  const prompt = pair.prompt as Message[] | undefined;
  if (!Array.isArray(prompt) || prompt.length === 0) throw new Error(`${where}: prompt must be a non-empty list of messages`);
  const conversations: SharegptTurn[] = [];
  let imageParts = 0;
  prompt.forEach((msg, i) => {
    const w = `${where}: prompt[${i}]`;
    if (msg.role === "system" && i === 0) {
      conversations.push({ from: "system", value: messageText(msg, w, false).text });
      return;
    }
    const expected = (conversations.length - (conversations[0]?.from === "system" ? 1 : 0)) % 2 === 0 ? "user" : "assistant";
    if (msg.role !== expected) throw new Error(`${w}: expected a ${expected} turn, got ${JSON.stringify(msg.role)}`);
    const { text, images } = messageText(msg, w, msg.role === "user");
    imageParts += images;
    conversations.push({ from: msg.role === "user" ? "human" : "gpt", value: text });
  });
  if (conversations[conversations.length - 1]!.from !== "human") throw new Error(`${where}: the prompt must end with a user turn`);
  const rawImages = pair.images ?? [];
  if (!Array.isArray(rawImages) || !rawImages.every((p) => typeof p === "string")) throw new Error(`${where}: images must be a list of paths`);
  if (rawImages.length !== imageParts) throw new Error(`${where}: ${rawImages.length} images but ${imageParts} image parts in the prompt`);
  const images = rawImages.map((p) => {
    const abs = resolve(workDir, p);
    if (!existsSync(abs)) throw new Error(`${where}: image ${p} not found (${abs})`);
    return abs;
  });
  return { conversations, chosen: answerTurn(pair.chosen, `${where}: chosen`), rejected: answerTurn(pair.rejected, `${where}: rejected`), images };
}

/** The dataset_info.json entry: sharegpt, pairwise (`ranking`), with the column and tag names spelled out. */
export function datasetInfo(fileName: string = LLAMAFACTORY_FILES.dataset) {
  return {
    [LLAMAFACTORY_DATASET]: {
      file_name: fileName,
      formatting: "sharegpt",
      ranking: true,
      columns: { messages: "conversations", chosen: "chosen", rejected: "rejected", images: "images" },
      tags: { role_tag: "from", content_tag: "value", user_tag: "human", assistant_tag: "gpt", system_tag: "system" },
    },
  };
}

/** per_device × accumulation = batch_size, per_device the largest divisor of batch_size not above the wish. */
export function splitBatch(batchSize: number, perDeviceWish = 1): { perDevice: number; accumulation: number } {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch_size must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(perDeviceWish) || perDeviceWish < 1) throw new Error(`perDeviceBatch must be a positive integer, got ${perDeviceWish}`);
  let perDevice = Math.min(perDeviceWish, batchSize);
  while (batchSize % perDevice !== 0) perDevice--;
  return { perDevice, accumulation: batchSize / perDevice };
}

/** The config lines of simpo_lora.yaml. */
export function llamaFactoryConfig(settings: TrainSettings, options: LlamaFactoryOptions, datasetDir: string, configPath: string): YamlLine[] {
  const s = simpoOptionsFromFile(settings.simpo);
  const { perDevice, accumulation } = splitBatch(s.batchSize, options.perDeviceBatch ?? 1);
  if (settings.init_adapter?.includes(","))
    throw new Error(`init_adapter ${settings.init_adapter} contains a comma, which LLaMA-Factory reads as a list of adapters`);
  const lines: YamlLine[] = [
    {
      comment: `LLaMA-Factory SimPO LoRA config written by Panel-of-Peers (${TRAINER_FORMAT}): ${settings.experiment} / ${settings.peer} / iteration ${settings.iteration}, ${settings.pair_count} pairs.`,
    },
    { comment: `Run: llamafactory-cli train ${configPath}` },
    { comment: "model" },
    { key: "model_name_or_path", value: options.modelNameOrPath },
    ...(settings.init_adapter ? [{ key: "adapter_name_or_path", value: settings.init_adapter }] : []),
    { comment: "method: SimPO (no reference model); simpo_gamma is the absolute margin gamma, as ours" },
    { key: "stage", value: "dpo" },
    { key: "do_train", value: true },
    { key: "finetuning_type", value: "lora" },
    { key: "lora_rank", value: options.loraRank ?? 8 },
    { key: "lora_target", value: options.loraTarget ?? "all" },
    { key: "pref_loss", value: "simpo" },
    { key: "pref_beta", value: s.beta, float: true },
    { key: "simpo_gamma", value: s.gamma, float: true },
    { key: "pref_ftx", value: s.sftWeight ?? 0, float: true },
    { comment: "dataset" },
    { key: "dataset", value: LLAMAFACTORY_DATASET },
    { key: "dataset_dir", value: datasetDir },
    { key: "template", value: options.template },
    { comment: "output: the contract's output_dir; only the final adapter is saved there" },
    { key: "output_dir", value: settings.output_dir },
    { key: "overwrite_output_dir", value: true },
    { key: "save_strategy", value: "no" },
    { key: "logging_steps", value: 1 },
    { key: "report_to", value: "none" },
    { comment: `train: batch_size ${s.batchSize} = ${perDevice} per device x ${accumulation} accumulation steps (one process)` },
    { key: "per_device_train_batch_size", value: perDevice },
    { key: "gradient_accumulation_steps", value: accumulation },
    { key: "learning_rate", value: s.learningRate, float: true },
    { key: "num_train_epochs", value: s.epochs, float: true },
    { key: "seed", value: s.seed },
    { key: "bf16", value: options.bf16 ?? true },
  ];
  if (options.evalMargins ?? true) {
    lines.push(
      { comment: "eval: margins on all pairs before training (eval_on_start) and after it (final do_eval); eval_steps is past the last step" },
      { key: "eval_dataset", value: LLAMAFACTORY_DATASET },
      { key: "per_device_eval_batch_size", value: perDevice },
      { key: "eval_strategy", value: "steps" },
      { key: "eval_steps", value: Math.max(1, settings.pair_count) * Math.max(1, Math.ceil(s.epochs)) + 1 },
      { key: "eval_on_start", value: true },
    );
  }
  for (const [key, value] of Object.entries(options.extra ?? {})) lines.push({ key, value });
  return lines;
}

/**
 * Writes `<workDir>/llamafactory/{dataset.json, dataset_info.json, simpo_lora.yaml}` for the
 * work directory's pairs.jsonl and returns their paths (see the module comment for how to run it).
 */
export function writeLlamaFactoryFiles(workDir: string, settings: TrainSettings, options: LlamaFactoryOptions): LlamaFactoryPaths {
  if (settings.format !== TRAINER_FORMAT) throw new Error(`settings.format is ${JSON.stringify(settings.format)}, expected ${TRAINER_FORMAT}`);
  if (!options.modelNameOrPath) throw new Error("modelNameOrPath is required");
  if (!options.template) throw new Error("template is required");
  const work = resolve(workDir);
  const lines = readFileSync(join(work, WORK_FILES.pairs), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const records = lines.map((line, i) => toSharegptRecord(JSON.parse(line) as Record<string, unknown>, work, `${WORK_FILES.pairs} line ${i + 1}`));
  if (records.length === 0) throw new Error(`${WORK_FILES.pairs} has no pairs`);
  if (!isAbsolute(settings.output_dir)) throw new Error(`settings.output_dir must be absolute, got ${settings.output_dir}`);

  const dir = join(work, LLAMAFACTORY_DIR);
  mkdirSync(dir, { recursive: true });
  const paths: LlamaFactoryPaths = {
    dir,
    dataset: join(dir, LLAMAFACTORY_FILES.dataset),
    datasetInfo: join(dir, LLAMAFACTORY_FILES.datasetInfo),
    config: join(dir, LLAMAFACTORY_FILES.config),
  };
  const yaml = toYaml(llamaFactoryConfig({ ...settings, pair_count: records.length }, options, dir, paths.config));
  writeFileSync(paths.dataset, JSON.stringify(records, null, 2) + "\n");
  writeFileSync(paths.datasetInfo, JSON.stringify(datasetInfo(), null, 2) + "\n");
  writeFileSync(paths.config, yaml);
  return paths;
}

/** `--extra key=value`: true/false/null and numbers as such, anything else a string. */
function parseExtra(items: string[]): Record<string, YamlScalar> {
  const out: Record<string, YamlScalar> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new Error(`--extra expects key=value, got ${item}`);
    const raw = item.slice(eq + 1);
    out[item.slice(0, eq)] =
      raw === "true" ? true : raw === "false" ? false : raw === "null" ? null : raw.trim() !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      work: { type: "string" },
      model: { type: "string" },
      template: { type: "string" },
      "lora-rank": { type: "string" },
      "lora-target": { type: "string" },
      "per-device-batch": { type: "string" },
      "no-bf16": { type: "boolean" },
      "no-eval": { type: "boolean" },
      extra: { type: "string", multiple: true },
    },
  });
  const work = values.work ?? process.env.POP_TRAIN_DIR;
  if (!work || !values.model || !values.template) {
    console.error(
      "usage: npx tsx actors/trainers/llamafactory/trainer.ts --model <hf id or path> --template <llamafactory template> [--work <dir> (default $POP_TRAIN_DIR)] [--lora-rank N] [--lora-target all] [--per-device-batch N] [--no-bf16] [--no-eval] [--extra key=value ...]",
    );
    process.exit(2);
  }
  const settings = readTrainSettings(work);
  const paths = writeLlamaFactoryFiles(work, settings, {
    modelNameOrPath: values.model,
    template: values.template,
    loraRank: values["lora-rank"] ? Number(values["lora-rank"]) : undefined,
    loraTarget: values["lora-target"],
    perDeviceBatch: values["per-device-batch"] ? Number(values["per-device-batch"]) : undefined,
    bf16: !values["no-bf16"],
    evalMargins: !values["no-eval"],
    extra: parseExtra(values.extra ?? []),
  });
  console.log(`wrote ${paths.dataset}, ${paths.datasetInfo}, ${paths.config}\nrun: llamafactory-cli train ${paths.config}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
