import { describe, expect, it, beforeAll } from "vitest";
import { initTf } from "../../actors/models/tiny/tf.ts";
import { pretrainMember, pretrainEncoder, PANEL } from "../../actors/models/tiny/pretrain.ts";
import { VOCAB } from "../../actors/models/tiny/vocab.ts";
import { parseWeights, ENCODER_PARAMS } from "../../actors/models/tiny/model.ts";

const TINY = { hidden: 16, embed: 8, c1: 4, c2: 6, att: 4, vocab: VOCAB };
beforeAll(async () => {
  await initTf();
});

describe("pretraining", () => {
  it("is deterministic for a seed and differs across members", () => {
    const o = { steps: 3, refineSteps: 2, batch: 8, judgeBatch: 4, config: TINY };
    const a = pretrainMember(PANEL[0]!, o);
    const b = pretrainMember(PANEL[0]!, o);
    const c = pretrainMember(PANEL[1]!, o);
    expect(a.weightHash()).toBe(b.weightHash());
    expect(a.weightHash()).not.toBe(c.weightHash());
    const parsed = parseWeights(a.serialize({ name: "x" }));
    expect(parsed.meta).toEqual({ name: "x" });
    expect(parsed.config.hidden).toBe(16);
    for (const m of [a, b, c]) m.dispose();
  });

  it("members keep the shared vision tower frozen; resuming after the first phase equals a full run", () => {
    const enc = pretrainEncoder({ steps: 2, batch: 8, config: TINY });
    const o = { steps: 2, refineSteps: 2, batch: 8, judgeBatch: 4, config: TINY };
    const full = pretrainMember(PANEL[2]!, o, enc);
    for (const n of ENCODER_PARAMS) expect(Array.from(full.params[n]!.dataSync())).toEqual(Array.from(enc.params[n]!.dataSync()));
    const first = pretrainMember(PANEL[2]!, { ...o, refineSteps: 0 }, enc);
    const resumed = pretrainMember(PANEL[2]!, o, enc, first);
    expect(resumed.weightHash()).toBe(full.weightHash());
    for (const m of [enc, full, first, resumed]) m.dispose();
  });
});
