/**
 * The trainer contract's files as the schemas define them: settings.json's `simpo` keeps its
 * snake_case names and order, and converts back to the run options it came from; metrics.json
 * likewise; a settings.json read back is checked by the same schema it was written from.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { simpoOptionsOf } from "../../actors/models/contract.ts";
import { simpoFileSettings, simpoOptionsFromFile, TRAINER_FORMAT, trainMetricsOf, trainSummaryFromMetrics } from "../../actors/trainers/contract.ts";
import { readTrainSettings, WorkDirError } from "../../actors/trainers/settings-file.ts";
import { formatStepLine, parseStepLine } from "../../actors/trainers/step-lines.ts";
import { TrainingConfig } from "../../protocol/mod.ts";

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), "pop-trainer-contract-"));
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

describe("the trainer contract's files", () => {
  it("writes the run's SimPO options under the file's names and reads them back", () => {
    const options = simpoOptionsOf(TrainingConfig.parse({ sftWeight: 0.5, judgeAnchor: 1 }), { learningRate: 1e-4, seed: 42 });
    const file = simpoFileSettings(options);
    // The names and their order are the external trainers' (actors/trainers/python/simpo_lora.py).
    expect(JSON.stringify(file)).toBe('{"beta":2,"gamma":1,"learning_rate":0.0001,"epochs":3,"batch_size":32,"sft_weight":0.5,"seed":42}');
    // judgeAnchor does not travel in the file.
    const { judgeAnchor, ...carried } = options;
    expect(judgeAnchor).toBe(1);
    expect(simpoOptionsFromFile(file)).toEqual(carried);
    // An absent sftWeight (the backend's default) is written as 0, pure SimPO.
    expect(simpoFileSettings({ ...carried, sftWeight: undefined }).sft_weight).toBe(0);
  });

  it("writes metrics.json from a run's summary and reads the summary back", () => {
    const summary = { steps: 4, pairs: 12, lossFirst: 0.7, lossLast: 0.4, marginBefore: -0.1, marginAfter: 0.3, ms: 1500 };
    const metrics = trainMetricsOf({ ...summary, terms: { simpo: [1, 0.5] } }, 1.5);
    expect(JSON.stringify(metrics)).toBe('{"steps":4,"pairs":12,"loss_first":0.7,"loss_last":0.4,"margin_before":-0.1,"margin_after":0.3,"seconds":1.5}');
    expect(trainSummaryFromMetrics(metrics)).toEqual(summary);
  });

  it("checks a settings.json read back against the contract's schema", () => {
    const settings = {
      format: TRAINER_FORMAT,
      experiment: "e",
      peer: "p",
      iteration: 1,
      base_model: "m",
      init_adapter: null,
      pairs: join(work, "pairs.jsonl"),
      pair_count: 0,
      output_dir: join(work, "adapter"),
      metrics: join(work, "metrics.json"),
      simpo: { beta: 2, gamma: 1, learning_rate: 1e-3, epochs: 1, batch_size: 4, seed: 1 },
    };
    writeFileSync(join(work, "settings.json"), JSON.stringify(settings));
    // sft_weight absent: 0, as the Python trainer reads it.
    expect(readTrainSettings(work).simpo.sft_weight).toBe(0);
    writeFileSync(join(work, "settings.json"), JSON.stringify({ ...settings, simpo: { ...settings.simpo, batch_size: 0 } }));
    expect(() => readTrainSettings(work)).toThrow(/simpo\.batch_size/);
    writeFileSync(join(work, "settings.json"), JSON.stringify({ ...settings, format: "pop-trainer/0" }));
    expect(() => readTrainSettings(work)).toThrow(WorkDirError);
    expect(() => readTrainSettings(work)).toThrow(/format 'pop-trainer\/0'/);
  });

  it("reads the trainers' step lines: the Python trainer's, pop train's, and progress without figures", () => {
    // As actors/trainers/python/simpo_lora.py prints them when its stderr is not a terminal.
    expect(parseStepLine("[simpo_lora] step 3/40 loss 0.6931 margin +0.0125 lr 1.00e-05 elapsed 0:00:12 eta 0:02:28")).toEqual({
      done: 3,
      total: 40,
      step: { loss: 0.6931, margin: 0.0125 },
    });
    expect(parseStepLine(`pop train: ${formatStepLine(2, 4, { loss: 1.5, margin: -0.25 })}`)).toEqual({
      done: 2,
      total: 4,
      step: { loss: 1.5, margin: -0.25 },
    });
    expect(parseStepLine("step 7/9")).toEqual({ done: 7, total: 9 });
    expect(parseStepLine("step 7/9 loss nan margin 0.1")).toEqual({ done: 7, total: 9 });
    expect(parseStepLine("[simpo_lora] margin before: +0.0100 (mean over 12 pairs)")).toBeUndefined();
    expect(parseStepLine("a stepper 1/2")).toBeUndefined();
  });
});
