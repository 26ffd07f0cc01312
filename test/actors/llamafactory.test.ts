import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { encodePng } from "../../actors/images/png-encode.ts";
import { TRAINER_FORMAT, type TrainSettings } from "../../actors/trainers/contract.ts";
import { llamaFactoryMetrics, llamaFactoryStepLines, writeLlamaFactoryMetrics } from "../../actors/trainers/llamafactory/metrics.ts";
import { parseStepLine } from "../../actors/trainers/step-lines.ts";
import {
  splitBatch,
  toYaml,
  writeLlamaFactoryFiles,
  yamlNumber,
  yamlString,
  type SharegptPreferenceRecord,
} from "../../actors/trainers/llamafactory/trainer.ts";

let work: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "pop-llamafactory-"));
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

function png(name: string, shade: number): string {
  mkdirSync(join(work, "images"), { recursive: true });
  writeFileSync(join(work, "images", name), encodePng(2, 2, new Uint8Array(12).fill(shade)));
  return `images/${name}`;
}

const user = (images: number, text: string) => [
  { role: "user", content: [...Array.from({ length: images }, () => ({ type: "image" })), { type: "text", text }] },
];
const assistant = (text: string) => [{ role: "assistant", content: [{ type: "text", text }] }];

function settingsFor(overrides: Partial<TrainSettings> = {}, simpo: Partial<TrainSettings["simpo"]> = {}): TrainSettings {
  mkdirSync(join(work, "adapter"), { recursive: true });
  return {
    format: TRAINER_FORMAT,
    experiment: "exp-1",
    peer: "peer-a",
    iteration: 2,
    base_model: "served-name",
    init_adapter: null,
    pairs: join(work, "pairs.jsonl"),
    pair_count: 3,
    output_dir: join(work, "adapter"),
    metrics: join(work, "metrics.json"),
    simpo: { beta: 2.5, gamma: 1.375, learning_rate: 1e-7, epochs: 1, batch_size: 8, sft_weight: 0.2, seed: 7, ...simpo },
    ...overrides,
  };
}

function writeWork(settings: TrainSettings): void {
  const a = png("a.png", 10);
  const b = png("b.png", 20);
  const c = png("c.png", 30);
  const pairs = [
    {
      prompt: user(1, "What colour is this?"),
      chosen: assistant("Dark grey."),
      rejected: assistant("Bright red."),
      images: [a],
      score_chosen: 0.9,
      score_rejected: 0.1,
      prompt_id: "p1",
    },
    {
      prompt: user(2, 'Compare the "two" images:\nwhich is lighter?'),
      chosen: assistant("The second."),
      rejected: assistant("The first <image> one."),
      images: [b, c],
      score_chosen: 0.8,
      score_rejected: 0.3,
      prompt_id: "p2",
    },
    {
      prompt: [{ role: "system", content: "Be brief." }, ...user(1, "Describe ünïcode ✓.")],
      chosen: assistant("Grey square."),
      rejected: [{ role: "assistant", content: "A cat." }],
      images: [a],
      score_chosen: 0.7,
      score_rejected: 0.2,
      prompt_id: "p3",
    },
  ];
  writeFileSync(join(work, "settings.json"), JSON.stringify(settings));
  writeFileSync(join(work, "pairs.jsonl"), pairs.map((p) => JSON.stringify(p)).join("\n") + "\n");
}

/** Our YAML is a flat mapping of `key: scalar` lines; double-quoted strings here are JSON-compatible (BMP only). */
function parseYaml(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*): (.*)$/.exec(line);
    if (!m) throw new Error(`unexpected YAML line ${line}`);
    const raw = m[2]!;
    out[m[1]!] = raw.startsWith('"') ? JSON.parse(raw) : raw === "true" ? true : raw === "false" ? false : raw === "null" ? null : Number(raw);
    if (typeof out[m[1]!] === "number" && Number.isNaN(out[m[1]!])) throw new Error(`bad number ${raw}`);
  }
  return out;
}

describe("writeLlamaFactoryFiles", () => {
  it("writes sharegpt preference records, dataset_info.json and a SimPO LoRA config", () => {
    const settings = settingsFor();
    writeWork(settings);
    const paths = writeLlamaFactoryFiles(work, settings, { modelNameOrPath: "Qwen/Qwen2-VL-2B-Instruct", template: "qwen2_vl", perDeviceBatch: 2 });
    expect(paths).toEqual({
      dir: join(work, "llamafactory"),
      dataset: join(work, "llamafactory", "dataset.json"),
      datasetInfo: join(work, "llamafactory", "dataset_info.json"),
      config: join(work, "llamafactory", "simpo_lora.yaml"),
    });

    const records = JSON.parse(readFileSync(paths.dataset, "utf8")) as SharegptPreferenceRecord[];
    expect(records).toHaveLength(3);
    for (const r of records) {
      const text = [...r.conversations, r.chosen, r.rejected].map((t) => t.value).join("\n");
      expect(text.split("<image>").length - 1).toBe(r.images.length);
      for (const p of r.images) {
        expect(isAbsolute(p)).toBe(true);
        expect(existsSync(p)).toBe(true);
      }
      expect(r.chosen.from).toBe("gpt");
      expect(r.rejected.from).toBe("gpt");
      expect(r.conversations[r.conversations.length - 1]!.from).toBe("human");
    }
    expect(records[0]).toEqual({
      conversations: [{ from: "human", value: "<image>What colour is this?" }],
      chosen: { from: "gpt", value: "Dark grey." },
      rejected: { from: "gpt", value: "Bright red." },
      images: [join(work, "images", "a.png")],
    });
    expect(records[1]!.conversations[0]!.value).toBe('<image><image>Compare the "two" images:\nwhich is lighter?');
    expect(records[1]!.images).toEqual([join(work, "images", "b.png"), join(work, "images", "c.png")]);
    expect(records[1]!.rejected.value).toBe("The first < image> one.");
    expect(records[2]!.conversations).toEqual([
      { from: "system", value: "Be brief." },
      { from: "human", value: "<image>Describe ünïcode ✓." },
    ]);
    expect(records[2]!.rejected).toEqual({ from: "gpt", value: "A cat." });

    expect(JSON.parse(readFileSync(paths.datasetInfo, "utf8"))).toEqual({
      pop_pairs: {
        file_name: "dataset.json",
        formatting: "sharegpt",
        ranking: true,
        columns: { messages: "conversations", chosen: "chosen", rejected: "rejected", images: "images" },
        tags: { role_tag: "from", content_tag: "value", user_tag: "human", assistant_tag: "gpt", system_tag: "system" },
      },
    });

    const yamlText = readFileSync(paths.config, "utf8");
    const cfg = parseYaml(yamlText);
    expect(cfg).toEqual({
      model_name_or_path: "Qwen/Qwen2-VL-2B-Instruct",
      stage: "dpo",
      do_train: true,
      finetuning_type: "lora",
      lora_rank: 8,
      lora_target: "all",
      pref_loss: "simpo",
      pref_beta: 2.5,
      simpo_gamma: 1.375, // absolute in LLaMA-Factory too: no gamma/beta conversion
      pref_ftx: 0.2,
      dataset: "pop_pairs",
      dataset_dir: join(work, "llamafactory"),
      template: "qwen2_vl",
      output_dir: join(work, "adapter"),
      overwrite_output_dir: true,
      save_strategy: "no",
      logging_steps: 1,
      report_to: "none",
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 4,
      learning_rate: 1e-7,
      num_train_epochs: 1,
      seed: 7,
      bf16: true,
      eval_dataset: "pop_pairs",
      per_device_eval_batch_size: 2,
      eval_strategy: "steps",
      eval_steps: 4,
      eval_on_start: true,
    });
    expect(cfg).not.toHaveProperty("adapter_name_or_path");
    // YAML 1.1 details: `no` quoted (bare it is false), floats with a dot and a signed exponent.
    expect(yamlText).toContain('save_strategy: "no"\n');
    expect(yamlText).toContain("learning_rate: 1.0e-7\n");
    expect(yamlText).toContain("num_train_epochs: 1.0\n");
    expect(yamlText).toContain("simpo_gamma: 1.375\n");
    expect(yamlText).toContain(`# Run: llamafactory-cli train ${paths.config}\n`);
  });

  it("starts from init_adapter and passes options and extra keys through", () => {
    const prev = join(work, "prev-adapter");
    const settings = settingsFor({ init_adapter: prev }, { batch_size: 6, learning_rate: 5e-6, epochs: 2, sft_weight: 0 });
    writeWork(settings);
    const paths = writeLlamaFactoryFiles(work, settings, {
      modelNameOrPath: "llava-hf/llava-1.5-7b-hf",
      template: "llava",
      loraRank: 16,
      loraTarget: "q_proj,v_proj",
      perDeviceBatch: 4,
      bf16: false,
      evalMargins: false,
      extra: { trust_remote_code: true, image_max_pixels: 262144 },
    });
    const cfg = parseYaml(readFileSync(paths.config, "utf8"));
    expect(cfg.adapter_name_or_path).toBe(prev);
    expect(cfg.lora_rank).toBe(16);
    expect(cfg.lora_target).toBe("q_proj,v_proj");
    expect(cfg.template).toBe("llava");
    expect([cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps]).toEqual([3, 2]);
    expect(cfg.learning_rate).toBe(5e-6);
    expect(cfg.num_train_epochs).toBe(2);
    expect(cfg.pref_ftx).toBe(0);
    expect(cfg.bf16).toBe(false);
    expect(cfg.trust_remote_code).toBe(true);
    expect(cfg.image_max_pixels).toBe(262144);
    expect(cfg).not.toHaveProperty("eval_dataset");
    expect(cfg).not.toHaveProperty("eval_on_start");
  });

  it("refuses pairs whose image parts and images disagree, or whose images are missing", () => {
    const settings = settingsFor();
    writeWork(settings);
    const bad = { prompt: user(2, "q"), chosen: assistant("a"), rejected: assistant("b"), images: ["images/a.png"] };
    writeFileSync(join(work, "pairs.jsonl"), JSON.stringify(bad) + "\n");
    expect(() => writeLlamaFactoryFiles(work, settings, { modelNameOrPath: "m", template: "t" })).toThrow(/1 images but 2 image parts/);
    writeFileSync(join(work, "pairs.jsonl"), JSON.stringify({ ...bad, prompt: user(1, "q"), images: ["images/missing.png"] }) + "\n");
    expect(() => writeLlamaFactoryFiles(work, settings, { modelNameOrPath: "m", template: "t" })).toThrow(/not found/);
  });
});

describe("YAML emitter", () => {
  it("quotes strings safely and formats numbers for YAML 1.1", () => {
    expect(yamlString("no")).toBe('"no"');
    expect(yamlString('a "b" \\ c\nd\té')).toBe(String.raw`"a \"b\" \\ c\u000ad\u0009\u00e9"`);
    expect(yamlString("😀")).toBe('"\\U0001f600"');
    expect(() => yamlString("${oc.env:HOME}")).toThrow(/interpolation/);
    expect(yamlNumber(1e-7)).toBe("1.0e-7");
    expect(yamlNumber(5e-6)).toBe("0.000005");
    expect(yamlNumber(1e21)).toBe("1.0e+21");
    expect(yamlNumber(3, true)).toBe("3.0");
    expect(() => yamlNumber(Number.NaN)).toThrow();
    expect(toYaml([{ comment: "two\nlines" }, { key: "a", value: null }])).toBe("# two lines\na: null\n");
    expect(() =>
      toYaml([
        { key: "a", value: 1 },
        { key: "a", value: 2 },
      ]),
    ).toThrow(/twice/);
    expect(() => toYaml([{ key: "a: b", value: 1 }])).toThrow(/identifier/);
  });

  it("splits the batch into per-device size x accumulation", () => {
    expect(splitBatch(8, 1)).toEqual({ perDevice: 1, accumulation: 8 });
    expect(splitBatch(8, 3)).toEqual({ perDevice: 2, accumulation: 4 });
    expect(splitBatch(4, 16)).toEqual({ perDevice: 4, accumulation: 1 });
    expect(() => splitBatch(0)).toThrow();
  });
});

/** trainer_state.json as Hugging Face's Trainer saves it after a LLaMA-Factory SimPO run (logging_steps 1, eval_on_start). */
function trainerState() {
  const evalEntry = (step: number, epoch: number, chosen: number, rejected: number) => ({
    epoch,
    "eval_logits/chosen": -1.2,
    "eval_logits/rejected": -1.1,
    "eval_logps/chosen": chosen,
    "eval_logps/rejected": rejected,
    eval_loss: 0.69,
    "eval_rewards/accuracies": 0.5,
    "eval_rewards/chosen": 2.5 * chosen,
    "eval_rewards/margins": 2.5 * (chosen - rejected),
    "eval_rewards/rejected": 2.5 * rejected,
    eval_runtime: 3.1,
    eval_samples_per_second: 5.2,
    eval_steps_per_second: 1.3,
    step,
  });
  const trainEntry = (step: number, loss: number, chosen: number, rejected: number) => ({
    epoch: step / 3,
    grad_norm: 12.5,
    learning_rate: 1e-6,
    "logits/chosen": -1.3,
    "logits/rejected": -1.2,
    "logps/chosen": chosen,
    "logps/rejected": rejected,
    loss,
    "rewards/accuracies": 0.5,
    "rewards/chosen": 2.5 * chosen,
    "rewards/margins": 2.5 * (chosen - rejected),
    "rewards/rejected": 2.5 * rejected,
    step,
  });
  return {
    best_global_step: null,
    best_metric: null,
    best_model_checkpoint: null,
    epoch: 1.0,
    eval_steps: 4,
    global_step: 3,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: [
      evalEntry(0, 0, -1.5, -1.4),
      trainEntry(1, 1.61, -1.5, -1.45),
      trainEntry(2, 1.2, -1.3, -1.6),
      trainEntry(3, 0.9, -1.2, -1.9),
      { epoch: 1.0, step: 3, total_flos: 123456.0, train_loss: 1.24, train_runtime: 42.5, train_samples_per_second: 0.07, train_steps_per_second: 0.07 },
    ],
    logging_steps: 1,
    max_steps: 3,
    num_input_tokens_seen: 0,
    num_train_epochs: 1,
    save_steps: 500,
    stateful_callbacks: {
      TrainerControl: {
        args: { should_epoch_stop: false, should_evaluate: false, should_log: false, should_save: true, should_training_stop: true },
        attributes: {},
      },
    },
    total_flos: 123456.0,
    train_batch_size: 1,
    trial_name: null,
    trial_params: null,
  };
}

describe("llamaFactoryMetrics", () => {
  it("reads loss, steps and before/after margins from LLaMA-Factory's output files", () => {
    const settings = settingsFor();
    writeWork(settings);
    const out = settings.output_dir;
    writeFileSync(join(out, "trainer_state.json"), JSON.stringify(trainerState(), null, 2));
    writeFileSync(
      join(out, "train_results.json"),
      JSON.stringify({ epoch: 1.0, total_flos: 123456.0, train_loss: 1.24, train_runtime: 42.5, train_samples_per_second: 0.07, train_steps_per_second: 0.07 }),
    );
    writeFileSync(
      join(out, "eval_results.json"),
      JSON.stringify({ epoch: 1.0, "eval_logps/chosen": -1.1, "eval_logps/rejected": -2.0, "eval_rewards/margins": 2.25, eval_loss: 0.4, eval_runtime: 3.0 }),
    );
    expect(() => writeLlamaFactoryMetrics(work)).toThrow(/no peft adapter/);
    writeFileSync(join(out, "adapter_config.json"), "{}");
    writeFileSync(join(out, "adapter_model.safetensors"), "");
    const m = writeLlamaFactoryMetrics(work);
    expect(m.steps).toBe(3);
    expect(m.pairs).toBe(3);
    expect(m.loss_first).toBe(1.61);
    expect(m.loss_last).toBe(0.9);
    expect(m.margin_before).toBeCloseTo(-0.1, 10);
    expect(m.margin_after).toBeCloseTo(0.9, 10);
    expect(m.seconds).toBe(42.5);
    expect(JSON.parse(readFileSync(settings.metrics, "utf8"))).toEqual(m);
    // The logged steps as the contract's step lines, which the actor reads into the curve.
    const lines = llamaFactoryStepLines(out, settings.simpo.beta).map(parseStepLine);
    expect(lines.map((l) => [l!.done, l!.total, l!.step!.loss])).toEqual([
      [1, 3, 1.61],
      [2, 3, 1.2],
      [3, 3, 0.9],
    ]);
    expect(lines[2]!.step!.margin).toBeCloseTo(0.7, 4);
  });

  it("falls back to the first and last training batches without evaluation", () => {
    const dir = join(work, "out");
    mkdirSync(dir);
    const state = trainerState();
    state.log_history = state.log_history.filter((e) => !("eval_loss" in e));
    // rewards/margins only: margin = rewards/margins / beta.
    for (const e of state.log_history) {
      delete (e as Record<string, unknown>)["logps/chosen"];
      delete (e as Record<string, unknown>)["logps/rejected"];
    }
    writeFileSync(join(dir, "trainer_state.json"), JSON.stringify(state));
    const m = llamaFactoryMetrics(dir, 3, 2.5);
    expect(m.margin_before).toBeCloseTo(-0.05, 10);
    expect(m.margin_after).toBeCloseTo(0.7, 10);
    expect(m.seconds).toBe(42.5);
    expect(() => llamaFactoryMetrics(join(work, "nowhere"), 3, 2.5)).toThrow(/trainer_state/);
  });
});
