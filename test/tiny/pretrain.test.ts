import { describe, expect, it, beforeAll } from "vitest";
import { initTf } from "../../actors/tiny/tf.ts";
import { pretrainMember, PANEL } from "../../actors/tiny/pretrain.ts";
import { VOCAB } from "../../actors/tiny/vocab.ts";
import { parseWeights } from "../../actors/tiny/model.ts";

const TINY = { hidden: 16, embed: 8, c1: 4, c2: 6, att: 4, vocab: VOCAB };
beforeAll(async () => {
  await initTf();
});

describe("pretraining", () => {
  it("is deterministic for a seed and differs across members", () => {
    const a = pretrainMember(PANEL[0]!, { steps: 3, batch: 8, judgeBatch: 4, config: TINY });
    const b = pretrainMember(PANEL[0]!, { steps: 3, batch: 8, judgeBatch: 4, config: TINY });
    const c = pretrainMember(PANEL[1]!, { steps: 3, batch: 8, judgeBatch: 4, config: TINY });
    expect(a.weightHash()).toBe(b.weightHash());
    expect(a.weightHash()).not.toBe(c.weightHash());
    const parsed = parseWeights(a.serialize({ name: "x" }));
    expect(parsed.meta).toEqual({ name: "x" });
    expect(parsed.config.hidden).toBe(16);
    for (const m of [a, b, c]) m.dispose();
  });
});
