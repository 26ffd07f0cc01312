/**
 * Evaluation of any answering model on a benchmark kept as a JSONL file, one item a line:
 *
 * ```jsonl
 * {"image": "img/0001.png", "question": "What does the sign say?", "suite": "ocr", "answer": "stop"}
 * {"images": ["a.jpg", "b.jpg"], "question": "Which image is brighter?", "suite": "compare", "choices": ["the first", "the second"], "answer": "B"}
 * {"image": "c.png", "question": "How many cats?", "choices": ["one", "two", "three"], "answer": 2}
 * ```
 *
 * - `image` (one path) or `images` (a list, possibly empty): PNG or JPEG files, paths relative to
 *   the JSONL file's folder (absolute paths are taken as they are). Bytes go to the model as they
 *   are, so a remote model sees exactly the file.
 * - `question`: the text asked.
 * - `suite`: the suite the item counts towards (default `default`).
 * - `answer` without `choices`: the expected text, scored by exact match after normalisation
 *   (`normaliseAnswer` in scoring.ts: case, whitespace, surrounding quotes and trailing
 *   `.!,;:` do not matter).
 * - `choices` (2..26 strings) with `answer` as a letter (`"B"`) or a 0-based index (`1`): the
 *   model is shown the options as `A. text` lines and asked for a letter; scored by
 *   `readChoice` in scoring.ts (a leading letter, `Answer: B`, or the option's text).
 * - `id` (optional): the prompt id the model sees (default `<file name>:<line>`).
 *
 * Other fields are ignored, so exports of existing benchmarks can keep their metadata. Blank
 * lines are skipped.
 */
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { PopError } from "../../protocol/errors.ts";
import type { Answerer, EvalResult, Evaluator, ImageInput, PromptInput } from "../models/contract.ts";
import { sniffImage } from "../images/codec.ts";
import { choicePrompt, gradeReply, MAX_CHOICES, normaliseAnswer, optionLetter, type Expected } from "./scoring.ts";

/** The benchmark file cannot be used; `problems` has one `FILE:LINE: what` entry per fault. */
export class BenchmarkFileError extends PopError {
  readonly problems: string[];
  constructor(file: string, problems: string[], options: { cause?: unknown } = {}) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : "";
    super(`benchmark file ${file} has ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n  ${shown.join("\n  ")}${more}`, options);
    this.problems = problems;
  }
}

/** Options of {@link BenchmarkFileEvaluator.open}. */
export interface BenchmarkFileOptions {
  /** Prompts per generate() call (default 32). */
  batchSize?: number;
  /** Token limit per reply (the backend's default when absent). */
  maxTokens?: number;
  /** Use only the first `limit` items (the whole file is still checked; only their images are read). */
  limit?: number;
  /** Called after each batch with items done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** One checked item of the file. */
export interface BenchmarkItem {
  /** `FILE:LINE`, for messages. */
  where: string;
  suite: string;
  prompt: PromptInput;
  /** Exact-match answer, or the options and the index of the right one. */
  expect: Expected;
}

interface RawItem {
  where: string;
  line: number;
  id: string;
  suite: string;
  question: string;
  paths: string[];
  expect: BenchmarkItem["expect"];
}

/** Checks one parsed line; returns the item or the reasons it is not one. */
function checkLine(value: unknown, where: string, defaultId: string): Omit<RawItem, "line"> | string[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return ["not a JSON object"];
  const o = value as Record<string, unknown>;
  const bad: string[] = [];
  const nonEmpty = (v: unknown) => typeof v === "string" && v.trim() !== "";

  let paths: string[] = [];
  if ("image" in o && "images" in o) bad.push(`give "image" or "images", not both`);
  else if ("image" in o) {
    if (nonEmpty(o.image)) paths = [o.image as string];
    else bad.push(`"image" must be a non-empty path string`);
  } else if ("images" in o) {
    if (Array.isArray(o.images) && o.images.every(nonEmpty)) paths = o.images as string[];
    else bad.push(`"images" must be a list of non-empty path strings`);
  }
  if (!nonEmpty(o.question)) bad.push(`"question" must be a non-empty string`);
  if ("suite" in o && !nonEmpty(o.suite)) bad.push(`"suite" must be a non-empty string when given`);
  if ("id" in o && !nonEmpty(o.id)) bad.push(`"id" must be a non-empty string when given`);

  let expect: BenchmarkItem["expect"] | undefined;
  if ("choices" in o) {
    const c = o.choices;
    if (!Array.isArray(c) || c.length < 2 || c.length > MAX_CHOICES || !c.every(nonEmpty)) {
      bad.push(`"choices" must be a list of 2..${MAX_CHOICES} non-empty strings`);
    } else {
      const a = o.answer;
      const index = typeof a === "number" ? a : typeof a === "string" && /^[A-Za-z]$/.test(a.trim()) ? a.trim().toUpperCase().charCodeAt(0) - 65 : NaN;
      if (Number.isInteger(index) && index >= 0 && index < c.length) expect = { choices: c as string[], index };
      else bad.push(`"answer" must be an option letter A..${optionLetter(c.length - 1)} or an index 0..${c.length - 1}, got ${JSON.stringify(a)}`);
    }
  } else if (typeof o.answer !== "string" || normaliseAnswer(o.answer) === "") {
    bad.push(`"answer" must be a non-empty string (or give "choices" for multiple choice), got ${JSON.stringify(o.answer)}`);
  } else expect = { text: o.answer };

  if (bad.length || !expect) return bad;
  return {
    where,
    id: (o.id as string | undefined) ?? defaultId,
    suite: ((o.suite as string | undefined) ?? "default").trim(),
    question: o.question as string,
    paths,
    expect,
  };
}

/**
 * An {@link Evaluator} over a JSONL benchmark file (format in this module's doc comment): greedy
 * replies of the answerer, accuracy per suite and their unweighted mean.
 */
export class BenchmarkFileEvaluator implements Evaluator {
  private constructor(
    private readonly answerer: Answerer,
    /** The checked items, in file order. */
    readonly items: readonly BenchmarkItem[],
    private readonly options: BenchmarkFileOptions,
  ) {}

  /**
   * Reads and checks the whole file and reads each image once (an image shared by items is read
   * once). Throws {@link BenchmarkFileError} listing every bad line, missing or unreadable image,
   * and image that is not a PNG or JPEG, each as `FILE:LINE: what`.
   */
  static async open(answerer: Answerer, file: string, options: BenchmarkFileOptions = {}): Promise<BenchmarkFileEvaluator> {
    if (options.batchSize !== undefined && !(Number.isInteger(options.batchSize) && options.batchSize >= 1)) {
      throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
    }
    return new BenchmarkFileEvaluator(answerer, await readBenchmarkFile(file, options), options);
  }

  /** Greedy replies (`temperature: 0, k: 1, seed: 0`), batch by batch, scored per suite. */
  async evaluate(): Promise<EvalResult> {
    const t0 = performance.now();
    this.options.onProgress?.(0, this.items.length);
    const batch = this.options.batchSize ?? 32;
    const right = new Map<string, { ok: number; n: number }>();
    for (let at = 0; at < this.items.length; at += batch) {
      const part = this.items.slice(at, at + batch);
      const replies = await this.answerer.generate(
        part.map((it) => it.prompt),
        { k: 1, temperature: 0, seed: 0, ...(this.options.maxTokens !== undefined && { maxTokens: this.options.maxTokens }) },
      );
      if (replies.length !== part.length) throw new PopError(`the answerer returned ${replies.length} replies for ${part.length} prompts`);
      part.forEach((it, i) => {
        const reply = replies[i]![0] ?? "";
        const ok = gradeReply(reply, it.expect);
        const s = right.get(it.suite) ?? { ok: 0, n: 0 };
        s.n++;
        if (ok) s.ok++;
        right.set(it.suite, s);
      });
      this.options.onProgress?.(at + part.length, this.items.length);
    }
    const suites = Object.fromEntries([...right].map(([name, s]) => [name, s.ok / s.n]));
    const values = Object.values(suites);
    return { suites, average: values.reduce((a, b) => a + b, 0) / values.length, items: this.items.length, ms: performance.now() - t0 };
  }
}

/**
 * The checked items of a benchmark file (format in this module's doc comment), each image read
 * once. Throws {@link BenchmarkFileError} listing every bad line, missing or unreadable image,
 * and image that is not a PNG or JPEG, each as `FILE:LINE: what`. Also what the report reads to
 * grade pairs whose prompt is an item (deploy/observe/truth.ts).
 */
export async function readBenchmarkFile(file: string, options: Pick<BenchmarkFileOptions, "limit"> = {}): Promise<BenchmarkItem[]> {
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit >= 1)) {
    throw new RangeError(`limit must be a positive integer, got ${options.limit}`);
  }
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new BenchmarkFileError(file, [`${file}: cannot read: ${(error as Error).message}`], { cause: error });
  }
  // [line, message]: sorted into file order at the end, whichever check found them
  const problems: [number, string][] = [];
  const raw: RawItem[] = [];
  text
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .forEach((line, i) => {
      if (!line.trim()) return;
      const where = `${file}:${i + 1}`;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        problems.push([i + 1, `${where}: not valid JSON (${(error as Error).message})`]);
        return;
      }
      const item = checkLine(value, where, `${basename(file)}:${i + 1}`);
      if (Array.isArray(item)) problems.push(...item.map((p): [number, string] => [i + 1, `${where}: ${p}`]));
      else raw.push({ ...item, line: i + 1 });
    });
  if (!problems.length && !raw.length) problems.push([0, `${file}: no items (one JSON object per line expected)`]);

  const kept = raw.slice(0, options.limit ?? raw.length);
  const dir = dirname(file);
  const images = new Map<string, Promise<ImageInput | string>>();
  const load = (path: string) => {
    let p = images.get(path);
    if (!p) {
      p = loadImage(path);
      images.set(path, p);
    }
    return p;
  };
  const items: BenchmarkItem[] = [];
  for (const r of kept) {
    const loaded = await Promise.all(r.paths.map((p) => load(resolve(dir, p))));
    const failed = loaded.flatMap((l, j): [number, string][] =>
      typeof l === "string" ? [[r.line, `${r.where}: image ${JSON.stringify(r.paths[j])} ${l}`]] : [],
    );
    if (failed.length) {
      problems.push(...failed);
      continue;
    }
    const question = "choices" in r.expect ? choicePrompt(r.question, r.expect.choices) : r.question;
    items.push({ where: r.where, suite: r.suite, prompt: { id: r.id, question, images: loaded as ImageInput[] }, expect: r.expect });
  }
  if (problems.length)
    throw new BenchmarkFileError(
      file,
      problems.sort((a, b) => a[0] - b[0]).map(([, m]) => m),
    );
  return items;
}

/** The image at `path`, or why it cannot be used (a phrase that follows the path in a message). */
async function loadImage(path: string): Promise<ImageInput | string> {
  let data: Uint8Array;
  try {
    data = new Uint8Array(await readFile(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? `not found (looked at ${path})` : `cannot be read (${path}): ${(error as Error).message}`;
  }
  try {
    return { ...sniffImage(data), data };
  } catch (error) {
    return `is not a usable PNG or JPEG (${path}): ${(error as Error).message}`;
  }
}
