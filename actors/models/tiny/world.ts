/**
 * The tiny model's visual world: 32x32 RGB scenes of coloured shapes in a 4x2 grid, some with a
 * short glyph string drawn in a 3x5 bitmap font along the bottom, and six question
 * families mirroring the paper's benchmark groups. Everything is a pure function of a seed.
 *
 * Layout: shapes live in rows 0..15 (4 columns x 2 rows of 8x8 cells, aligned with the
 * encoder's 8x8 receptive fields); text lives in rows 25..29, up to three 6x5 glyphs (the font
 * stretched 2x horizontally), glyph i filling the bottom-row cell i. Each glyph lies in exactly
 * one encoder cell at a fixed place: a glyph straddling up to four cells at a shifting offset
 * made reading so slow to learn that an OCR-dumb member could not learn it from its peers
 * (docs/results/tiny-model-experiments.md, "The OCR-dumb gap").
 *
 * Families and answers (word-level, see {@link answerWords}):
 * - colour:    "what color is the circle ?"                  -> "red"
 * - shape:     "what shape is the red object ?"              -> "circle"
 * - count:     "how many shapes are there ?"                 -> "one".."three"
 * - ocr:       "what does the text say ?"                    -> "a h t" (one token per glyph)
 * - existence: "is there text ?"                             -> "yes" | "no" (half of the scenes)
 * - spatial:   "is the red object left or right ?"           -> "left" | "right" (columns 0-1 /
 *              2-3), or "is the red object above or below ?" -> "above" | "below" (row 0 / 1)
 */
import type { PromptInput, RgbImage } from "../contract.ts";
import { hashSeed, makeRng, type Rng } from "../../random/rng.ts";

export const IMG = 32;
/** Objects per scene: 1..MAX_OBJECTS. */
export const MAX_OBJECTS = 3;
export const COLORS = ["red", "green", "blue", "yellow", "purple"] as const;
export const SHAPES = ["square", "circle", "triangle", "cross"] as const;
export const NUMBERS = ["zero", "one", "two", "three", "four"] as const;
export const GLYPHS = ["a", "e", "h", "l", "t", "u"] as const;
export const FAMILIES = ["colour", "shape", "count", "ocr", "existence", "spatial"] as const;
export type Family = (typeof FAMILIES)[number];
export type Color = (typeof COLORS)[number];
export type Shape = (typeof SHAPES)[number];

const RGB: Record<Color, [number, number, number]> = {
  red: [220, 45, 40],
  green: [45, 200, 70],
  blue: [50, 90, 235],
  yellow: [230, 215, 40],
  purple: [175, 60, 205],
};

/** 3x5 bitmaps, rows top to bottom, 3 bits each (MSB = left). */
const FONT: Record<(typeof GLYPHS)[number], number[]> = {
  a: [0b010, 0b101, 0b111, 0b101, 0b101],
  e: [0b111, 0b100, 0b110, 0b100, 0b111],
  h: [0b101, 0b101, 0b111, 0b101, 0b101],
  l: [0b100, 0b100, 0b100, 0b100, 0b111],
  t: [0b111, 0b010, 0b010, 0b010, 0b010],
  u: [0b101, 0b101, 0b101, 0b101, 0b111],
};

export interface SceneObject {
  color: Color;
  shape: Shape;
  /** 0 = small, 1 = large. */
  size: 0 | 1;
  /** Grid cell: column 0..3, row 0..1. */
  col: number;
  row: number;
}

export interface Scene {
  objects: SceneObject[];
  /** Glyph string (may be empty). */
  text: string[];
  /** Seed for pixel noise and jitter. */
  noiseSeed: number;
}

/** A question about a scene with its exact answer (word tokens joined by single spaces). */
export interface WorldItem {
  id: string;
  family: Family;
  scene: Scene;
  question: string;
  answer: string;
}

/**
 * Accuracy of a uniform guess among the answers a question of the family allows (the chance level
 * the report marks): one of 5 colours, 4 shapes, 1-3 objects, 2-3 of 6 glyphs, yes/no, one of two sides.
 */
export function chanceOf(family: Family): number {
  switch (family) {
    case "colour":
      return 1 / COLORS.length;
    case "shape":
      return 1 / SHAPES.length;
    case "count":
      return 1 / MAX_OBJECTS;
    case "ocr":
      return (1 / GLYPHS.length ** 2 + 1 / GLYPHS.length ** 3) / 2 / 2;
    case "existence":
    case "spatial":
      return 1 / 2;
  }
}

/** Words an answer of each family may use (its "type"). */
export function answerWords(family: Family): readonly string[] {
  switch (family) {
    case "colour":
      return COLORS;
    case "shape":
      return SHAPES;
    case "count":
      return NUMBERS;
    case "ocr":
      return GLYPHS;
    case "existence":
      return ["yes", "no"];
    case "spatial":
      return ["left", "right", "above", "below"];
  }
}

/** Every word the world can put in a question. */
export const QUESTION_WORDS = [
  "what",
  "color",
  "is",
  "the",
  "shape",
  "object",
  "how",
  "many",
  "shapes",
  "are",
  "there",
  "does",
  "text",
  "say",
  "a",
  "left",
  "or",
  "right",
  "of",
  "above",
  "below",
  "?",
  ...COLORS,
  ...SHAPES,
] as const;

export function randomScene(rng: Rng, opts: { minObjects?: number; text?: boolean } = {}): Scene {
  const n = (opts.minObjects ?? 1) + rng.int(MAX_OBJECTS - (opts.minObjects ?? 1) + 1);
  const cells = rng.shuffle([0, 1, 2, 3, 4, 5, 6, 7]).slice(0, n);
  const colors = rng.shuffle([...COLORS]).slice(0, n);
  const objects: SceneObject[] = cells.map((c, i) => ({
    color: colors[i]!,
    shape: rng.pick(SHAPES),
    // every shape is drawn large (7x7): small 5x5 shapes made circle/square/cross hard to tell
    // apart for a 250k-parameter model (the draw is kept so scene streams stay aligned)
    size: (rng.int(2), 1) as 0 | 1,
    col: c % 4,
    row: Math.floor(c / 4),
  }));
  const hasText = opts.text ?? rng.next() < 0.6;
  const text = hasText ? Array.from({ length: 2 + rng.int(2) }, () => rng.pick(GLYPHS)) : [];
  // Once the text's pixel offset. Still drawn: it keeps every scene's objects, text and noise as
  // before (like the size draw above), and the shipped checkpoints were trained on these scenes.
  rng.int(7);
  return { objects, text, noiseSeed: rng.int(2 ** 31) };
}

/** Render a scene to raw RGB (deterministic from the scene's noise seed). */
export function renderScene(scene: Scene): RgbImage {
  const rng = makeRng(scene.noiseSeed);
  const data = new Uint8Array(IMG * IMG * 3);
  for (let i = 0; i < IMG * IMG; i++) {
    const g = 18 + rng.int(12);
    data[i * 3] = g;
    data[i * 3 + 1] = g;
    data[i * 3 + 2] = g;
  }
  const put = (x: number, y: number, c: readonly number[]) => {
    if (x < 0 || y < 0 || x >= IMG || y >= IMG) return;
    const o = (y * IMG + x) * 3;
    data[o] = c[0]!;
    data[o + 1] = c[1]!;
    data[o + 2] = c[2]!;
  };
  for (const ob of scene.objects) {
    const base = RGB[ob.color];
    const col = base.map((v) => Math.max(0, Math.min(255, v + rng.int(31) - 15)));
    const s = ob.size ? 7 : 5;
    const cx = ob.col * 8 + 4 + (ob.size ? 0 : rng.int(3) - 1);
    const cy = ob.row * 8 + 4 + (ob.size ? 0 : rng.int(3) - 1);
    const x0 = Math.round(cx - s / 2);
    const y0 = Math.round(cy - s / 2);
    for (let dy = 0; dy < s; dy++) {
      for (let dx = 0; dx < s; dx++) {
        const u = (dx + 0.5) / s - 0.5; // -0.5..0.5
        const v = (dy + 0.5) / s - 0.5;
        let on = false;
        switch (ob.shape) {
          case "square":
            on = true;
            break;
          case "circle":
            on = u * u + v * v <= 0.25;
            break;
          case "triangle":
            on = Math.abs(u) <= (v + 0.5) / 2 + 0.02;
            break;
          case "cross":
            on = Math.abs(u) < 0.2 || Math.abs(v) < 0.2;
            break;
        }
        if (on) put(x0 + dx, y0 + dy, col);
      }
    }
  }
  const ink = [235, 235, 235];
  scene.text.forEach((g, slot) => {
    const bm = FONT[g as (typeof GLYPHS)[number]];
    for (let r = 0; r < 5; r++) {
      for (let c = 0; c < 3; c++) {
        if (!((bm[r]! >> (2 - c)) & 1)) continue;
        for (let k = 0; k < 2; k++) put(1 + slot * 8 + c * 2 + k, 25 + r, ink);
      }
    }
  });
  return { width: IMG, height: IMG, data };
}

/** Try to ask a question of `family` about `scene`; undefined when the scene does not fit. */
export function askQuestion(scene: Scene, family: Family, rng: Rng): { question: string; answer: string } | undefined {
  const objs = scene.objects;
  switch (family) {
    case "colour": {
      const unique = objs.filter((o) => objs.filter((p) => p.shape === o.shape).length === 1);
      if (!unique.length) return undefined;
      const o = rng.pick(unique);
      return { question: `what color is the ${o.shape} ?`, answer: o.color };
    }
    case "shape": {
      const o = rng.pick(objs);
      return { question: `what shape is the ${o.color} object ?`, answer: o.shape };
    }
    case "count":
      // Only the total: counting one kind ("how many squares ?") reached 0.64-0.73 in pretraining,
      // a skill so fragile that every SimPO update on other pairs moved its zero/one boundary, so
      // PoP lost on counting what it gained elsewhere (docs/results/tiny-model-experiments.md, "The OCR-dumb gap").
      return { question: "how many shapes are there ?", answer: NUMBERS[objs.length]! };
    case "ocr":
      if (!scene.text.length) return undefined;
      return { question: "what does the text say ?", answer: scene.text.join(" ") };
    case "existence":
      // Whether the image holds text at all. Asking for an object of some colour needed comparing
      // the asked colour with whatever the attention found, which this network did not learn
      // within its pretraining budget (at chance after 1200 steps, with or without a learned
      // empty attention slot; docs/results/tiny-model-experiments.md), so nobody could teach or judge it.
      return { question: "is there text ?", answer: scene.text.length ? "yes" : "no" };
    case "spatial": {
      // Where one object lies (left or right half, top or bottom row), found by its unique
      // colour. Relations between two objects needed binding two positions, which this network
      // did not learn (0.46-0.70), so nobody could teach or judge them.
      const o = rng.pick(objs);
      if (rng.next() < 0.5) return { question: `is the ${o.color} object left or right ?`, answer: o.col < 2 ? "left" : "right" };
      return { question: `is the ${o.color} object above or below ?`, answer: o.row === 0 ? "above" : "below" };
    }
  }
}

/** The family a question of this world asks about, read from its wording (undefined: not one of its questions). */
export function familyOfQuestion(question: string): Family | undefined {
  if (/^what colou?r is the \w+ \?$/.test(question)) return "colour";
  if (/^what shape is the \w+ object \?$/.test(question)) return "shape";
  if (/^how many shapes are there \?$/.test(question)) return "count";
  if (question === "what does the text say ?") return "ocr";
  if (question === "is there text ?") return "existence";
  if (/^is the \w+ object (left or right|above or below) \?$/.test(question)) return "spatial";
  return undefined;
}

/** The item of `family` drawn from a seed (deterministic; retries scenes until one fits). */
export function makeItem(seed: number, family: Family, id: string): WorldItem {
  const rng = makeRng(seed);
  for (;;) {
    const scene = randomScene(rng, {
      minObjects: 1,
      text: family === "ocr" ? true : family === "existence" ? rng.next() < 0.5 : undefined,
    });
    const qa = askQuestion(scene, family, rng);
    if (qa) return { id, family, scene, ...qa };
  }
}

/** Seed domains: training, benchmark and pool items never share a seed stream. */
const DOMAIN = { train: "train", bench: "bench", pool: "pool" } as const;

/** Training item `index` of a training stream (for pretraining; labelled). */
export function trainItem(seed: number, index: number, family?: Family): WorldItem {
  const fam = family ?? FAMILIES[hashSeed(DOMAIN.train, seed, index, "fam") % FAMILIES.length]!;
  return makeItem(hashSeed(DOMAIN.train, seed, index), fam, `train-${seed}-${index}`);
}

/** Default seed of the held-out benchmark suites. */
export const BENCH_SEED = 20250901;
/** Default items per benchmark suite. */
export const BENCH_ITEMS = 100;

/** The held-out benchmark suite of a family: fixed seed, exact answers, disjoint seed stream. */
export function benchmarkSuite(family: Family, items = BENCH_ITEMS, seed = BENCH_SEED): WorldItem[] {
  return Array.from({ length: items }, (_, i) => makeItem(hashSeed(DOMAIN.bench, seed, family, i), family, `bench-${family}-${i}`));
}

/** All six suites, keyed by family. */
export function benchmarkSuites(items = BENCH_ITEMS, seed = BENCH_SEED): Record<Family, WorldItem[]> {
  return Object.fromEntries(FAMILIES.map((f) => [f, benchmarkSuite(f, items, seed)])) as Record<Family, WorldItem[]>;
}

/** Id of pool prompt `index` of pool `poolSeed`: `tiny-pool-<seed>-<index>`. */
export function poolPromptId(poolSeed: number, index: number): string {
  return `tiny-pool-${poolSeed}-${index}`;
}

/** Parse a pool prompt id back into (seed, index), or undefined when it is not one. */
export function parsePoolPromptId(id: string): { poolSeed: number; index: number } | undefined {
  const m = /^tiny-pool-(\d+)-(\d+)$/.exec(id);
  return m ? { poolSeed: Number(m[1]), index: Number(m[2]) } : undefined;
}

/**
 * Pool item `index` of pool `poolSeed` (families in rotation, scenes from the pool seed stream).
 * The answer is present for analysis only: PoP never sees it (use {@link poolPrompt}).
 */
export function poolItem(poolSeed: number, index: number): WorldItem {
  const family = FAMILIES[index % FAMILIES.length]!;
  return makeItem(hashSeed(DOMAIN.pool, poolSeed, index), family, poolPromptId(poolSeed, index));
}

/** Unlabeled pool prompt `index` of pool `poolSeed`, as the model backends take it. */
export function poolPrompt(poolSeed: number, index: number): PromptInput {
  return itemPrompt(poolItem(poolSeed, index));
}

/** Prompts `start .. start+count-1` of pool `poolSeed`. */
export function poolPrompts(poolSeed: number, start: number, count: number): PromptInput[] {
  return Array.from({ length: count }, (_, i) => poolPrompt(poolSeed, start + i));
}

/** The PromptInput of a world item (question text + rendered image; no answer). */
export function itemPrompt(item: WorldItem): PromptInput {
  return { id: item.id, question: item.question, images: [{ format: "rgb8", ...renderScene(item.scene) }] };
}
