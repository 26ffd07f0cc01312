/**
 * The user's own unlabeled prompts, from a JSONL file into the object store as a named
 * {@link PromptPool} (`pop pool --from FILE.jsonl`).
 *
 * One JSON object a line: `{"images": ["a.png", "b.jpg"], "question": "..."}` or
 * `{"image": "a.png", "question": "..."}`. Image paths are relative to the file's folder unless
 * absolute. Images are PNG or JPEG files stored byte for byte under their content hash.
 *
 * The whole file is checked before anything is stored, so a bad file stores nothing; it is read a
 * line at a time (once to check, once to store), and the pool is stored in chunks, so a file of
 * a million prompts is never held whole. Image
 * bytes are not held in memory between checking and storing (a pool of photos can be larger
 * than memory): the check records each file's hash and the store re-reads the file and refuses
 * it if the hash changed in between.
 */
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  NAME_PATTERN,
  PoolFormatError,
  PoolReader,
  PopError,
  openBlobs,
  putEncodedImage,
  sha256Name,
  storePool,
  type PoolPrompt,
  type StoredPool,
} from "../../protocol/mod.ts";
import { ImageFormatError, sniffImage } from "../../actors/images/codec.ts";

/** Images per prompt: the protocol's bound on a prompt's ImageRef array. */
export const MAX_IMAGES_PER_PROMPT = 16;
/** Longest question: the protocol's text bound (in UTF-16 code units, as zod counts). */
export const MAX_QUESTION_CHARS = 64 * 1024;
/** Problems spelled out in a {@link PromptFileError} message; the rest are counted. */
export const MAX_LISTED_PROBLEMS = 20;
/** The `experiment` field of a stored pool; the same one the tiny world's pool carries. */
const POOL_EXPERIMENT = "pool";
const KEYS = ["question", "image", "images"];

/**
 * A prompt file cannot be loaded. `problems` holds every problem as `FILE:LINE: what`; the
 * message lists the first {@link MAX_LISTED_PROBLEMS}. Not retryable: the file must be fixed.
 */
export class PromptFileError extends PopError {
  readonly problems: string[];
  constructor(file: string, problems: string[], options: { cause?: unknown } = {}) {
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  ${p}`);
    if (problems.length > MAX_LISTED_PROBLEMS) listed.push(`  and ${problems.length - MAX_LISTED_PROBLEMS} more`);
    super(`${file}: ${problems.length} problem${problems.length === 1 ? "" : "s"}, nothing stored:\n${listed.join("\n")}`, { cause: options.cause });
    this.problems = problems;
  }
}

/** A pool of that name already holds other prompts; `--replace` overwrites it. */
export class PoolExistsError extends PopError {}

/**
 * An image file changed between checking and storing. The pool was not stored; retrying checks
 * the file again.
 */
export class ImageChangedError extends PopError {}

/** One image of a checked prompt file, once per file path. */
export interface PromptImage {
  /** Absolute path of the file. */
  path: string;
  format: "png" | "jpeg";
  width: number;
  height: number;
  /** Content hash, the image's name in the object store. */
  hash: string;
  /** Size of the file in bytes. */
  bytes: number;
}

/** One prompt of a checked prompt file. */
export interface FilePrompt {
  /** 1-based line number in the file. */
  line: number;
  /** `<pool name>:<line>`: deterministic, and unique within the pool. */
  promptId: string;
  question: string;
  images: PromptImage[];
}

/** A prompt file, checked, with every prompt (for files small enough to hold; loading streams instead). */
export interface PromptFile extends PromptFileSummary {
  prompts: FilePrompt[];
}

/** What a prompt file holds, without its prompts. */
export interface PromptFileSummary {
  file: string;
  name: string;
  /** How many prompts. */
  count: number;
  /** Distinct images by content (two paths with the same bytes are one image). */
  images: number;
  /** Total size of the distinct images. */
  bytes: number;
}

export interface ReadOptions {
  /** Pool name; default {@link defaultPoolName} of the file. */
  name?: string;
  /** Called as prompts are checked (reading the file) and then stored: done of total. */
  onProgress?: (phase: "checking" | "storing", done: number, total: number) => void;
}

/** The pool name a file gets by default: its base name without extension, lower-cased, other characters as '-'. */
export function defaultPoolName(file: string): string {
  const name = path
    .parse(file)
    .name.toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+/, "")
    .slice(0, 64)
    .replace(/-+$/, "");
  return name || "prompts";
}

/**
 * Parses and checks a prompt file without touching NATS: every line, every image's header and
 * hash. Throws {@link PromptFileError} listing every problem found.
 */
export async function readPromptFile(file: string, options: ReadOptions = {}): Promise<PromptFile> {
  const scan = await Scan.start(file, options);
  const prompts: FilePrompt[] = [];
  for await (const p of scan.prompts("checking")) prompts.push(p);
  scan.finish();
  return { ...scan.summary(), prompts };
}

/**
 * One pass over a prompt file, a line at a time: yields the good prompts and collects the
 * problems. The images checked (path to header and hash) are kept across passes, so a second
 * pass neither re-reads nor re-hashes them.
 */
class Scan {
  readonly problems: string[] = [];
  readonly images = new Map<string, PromptImage | string>();
  count = 0;

  private constructor(
    readonly file: string,
    readonly name: string,
    /** Prompt lines (not blank, not comments): the progress total. */
    readonly total: number,
    private readonly options: ReadOptions,
  ) {}

  static async start(file: string, options: ReadOptions): Promise<Scan> {
    const name = options.name ?? defaultPoolName(file);
    if (!NAME_PATTERN.test(name))
      throw new PromptFileError(file, [`pool name '${name}' must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit`]);
    let total = 0;
    for await (const { text } of readLines(file)) if (!skipped(text)) total++;
    return new Scan(file, name, total, options);
  }

  /** The file's good prompts in order; problems are collected (the caller decides when they matter). */
  async *prompts(phase: "checking" | "storing"): AsyncGenerator<FilePrompt> {
    const dir = path.dirname(path.resolve(this.file));
    const { file, name } = this;
    this.problems.length = 0;
    this.count = 0;
    let done = 0;
    for await (const { line, text } of readLines(file)) {
      if (skipped(text)) continue;
      const at = (problem: string) => this.problems.push(`${file}:${line}: ${problem}`);
      const parsed = parseLine(text);
      let prompt: FilePrompt | undefined;
      if (typeof parsed === "string") {
        at(parsed);
      } else {
        parsed.problems.forEach(at);
        const found: PromptImage[] = [];
        for (const p of parsed.paths) {
          const abs = path.resolve(dir, p);
          if (!this.images.has(abs)) this.images.set(abs, await checkImage(abs));
          const image = this.images.get(abs)!;
          if (typeof image === "string") at(`image '${p}': ${image}`);
          else found.push(image);
        }
        if (!parsed.problems.length && found.length === parsed.paths.length)
          prompt = { line, promptId: `${name}:${line}`, question: parsed.question, images: found };
      }
      if (prompt) {
        this.count++;
        yield prompt;
      }
      this.options.onProgress?.(phase, ++done, this.total);
    }
  }

  /** Throws {@link PromptFileError} listing every problem the last pass found. */
  finish(): void {
    if (!this.total) this.problems.push(`${this.file}: no prompts (only blank lines and # comments)`);
    if (this.problems.length) throw new PromptFileError(this.file, [...this.problems]);
  }

  summary(): PromptFileSummary {
    const distinct = new Map<string, PromptImage>();
    for (const image of this.images.values()) if (typeof image !== "string") distinct.set(image.hash, image);
    const bytes = [...distinct.values()].reduce((s, i) => s + i.bytes, 0);
    return { file: this.file, name: this.name, count: this.count, images: distinct.size, bytes };
  }
}

/** A checked prompt as the pool stores it. */
const poolPrompt = (p: FilePrompt): PoolPrompt => ({
  promptId: p.promptId,
  question: p.question,
  images: p.images.map((i) => ({ hash: i.hash, format: i.format, width: i.width, height: i.height })),
});

/** The bytes of a checked image; refuses them if the file changed since it was checked. */
export async function readImageBytes(image: PromptImage): Promise<Uint8Array> {
  let data: Uint8Array;
  try {
    data = new Uint8Array(await readFile(image.path));
  } catch (error) {
    throw new ImageChangedError(
      `${image.path} could not be read again after it was checked (${(error as NodeJS.ErrnoException).code ?? error}); the pool was not stored`,
      { cause: error },
    );
  }
  if (sha256Name(data) !== image.hash) {
    throw new ImageChangedError(`${image.path} changed while loading (its content is not what was checked); the pool was not stored, load the file again`, {
      retryable: true,
    });
  }
  return data;
}

export interface LoadOptions extends ReadOptions {
  /** Overwrite a pool of that name that holds other prompts (otherwise {@link PoolExistsError}). */
  replace?: boolean;
}

export interface LoadResult {
  file: PromptFileSummary;
  /** False when the server already held exactly this pool (loading again stores nothing). */
  storedPool: boolean;
  /** Images that were not in the object store yet. */
  storedImages: number;
}

/**
 * Checks a prompt file, then stores its images (those the server lacks) and the pool under
 * `objectNames.pool(name)`, chunk by chunk. The file is read a line at a time, three times
 * (count, check, store), so that a file of a million prompts is never held whole: the check
 * finds every problem and the content's digest before anything is stored. The caller has
 * ensured the topology.
 */
export async function loadPromptFile(nc: NatsConnection, file: string, options: LoadOptions = {}): Promise<LoadResult> {
  const scan = await Scan.start(file, options);
  const meta = { name: scan.name, experiment: POOL_EXPERIMENT, description: `prompts from ${path.basename(file)}` };
  let checked: StoredPool | undefined;
  try {
    checked = await storePool(undefined, meta, mapPrompts(scan.prompts("checking"), poolPrompt));
  } catch (error) {
    if (!(error instanceof PoolFormatError)) throw error;
  }
  scan.finish();
  const blobs = await openBlobs(nc);
  const existing = await PoolReader.open(blobs, scan.name);
  // A pool stored before its chunks had digests is stored again, so that it can be pinned.
  const same = existing !== undefined && existing.digest === checked!.digest && existing.verifiable;
  if (existing && !same && !options.replace) {
    throw new PoolExistsError(
      `pool '${scan.name}' already exists with other prompts; pass --replace to overwrite it, or --name to load these under another name`,
    );
  }
  const done = new Set<string>();
  let storedImages = 0;
  async function* storing(): AsyncGenerator<PoolPrompt> {
    for await (const p of scan.prompts("storing")) {
      for (const image of p.images) {
        if (done.has(image.hash)) continue;
        done.add(image.hash);
        // Asking first saves re-reading files the server already has (a second load reads none).
        if (await blobs.info(image.hash)) continue;
        await putEncodedImage(blobs, { format: image.format, width: image.width, height: image.height, data: await readImageBytes(image) });
        storedImages++;
      }
      yield poolPrompt(p);
    }
    // Changed since the check: stop before the pool's index is written.
    if (scan.problems.length) throw new PromptFileError(file, ["the file changed while it was loaded; load it again", ...scan.problems]);
  }
  const stored = await storePool(same ? undefined : blobs, meta, storing());
  if (stored.digest !== checked!.digest) throw new PromptFileError(file, [`${file}: the file changed while it was loaded; load it again`]);
  return { file: scan.summary(), storedPool: !same, storedImages };
}

async function* mapPrompts<T, U>(items: AsyncIterable<T>, f: (t: T) => U): AsyncGenerator<U> {
  for await (const item of items) yield f(item);
}

/** The file's lines, numbered from 1, read a chunk at a time; refuses text that is not UTF-8. */
async function* readLines(file: string): AsyncGenerator<{ line: number; text: string }> {
  // fatal: a file in another encoding would otherwise load with U+FFFD in its questions.
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  let rest = "";
  let line = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      const parts = (rest + decoder.decode(chunk as Buffer, { stream: true })).split("\n");
      rest = parts.pop()!;
      for (const p of parts) yield { line: ++line, text: p.endsWith("\r") ? p.slice(0, -1) : p };
    }
    rest += decoder.decode();
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const why =
      e.code === "ENOENT"
        ? "no such file"
        : e.code === "EISDIR"
          ? "is a folder, not a file"
          : e instanceof TypeError
            ? "not UTF-8 text"
            : `cannot read it (${e.code ?? e.message})`;
    throw new PromptFileError(file, [`${file}: ${why}`], { cause: error });
  }
  yield { line: ++line, text: rest.endsWith("\r") ? rest.slice(0, -1) : rest };
}

const skipped = (line: string) => line.trim() === "" || line.trimStart().startsWith("#");

/** A line's question and image paths, with what is wrong with it; a string when it is not a JSON object at all. */
function parseLine(text: string): { question: string; paths: string[]; problems: string[] } | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `not valid JSON (${(error as Error).message})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return `expected a JSON object like {"image": "a.png", "question": "..."}, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`;
  const o = value as Record<string, unknown>;
  const problems: string[] = [];
  const unknown = Object.keys(o).filter((k) => !KEYS.includes(k));
  if (unknown.length)
    problems.push(`unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")} (allowed: question, image, images)`);
  const question = o.question;
  if (typeof question !== "string") problems.push(question === undefined ? `no "question"` : `"question" must be a string`);
  else if (question.trim() === "") problems.push(`"question" is empty`);
  else if (question.length > MAX_QUESTION_CHARS)
    problems.push(`"question" is ${question.length} characters; the protocol allows at most ${MAX_QUESTION_CHARS}`);
  const paths: string[] = [];
  if ("image" in o && "images" in o) {
    problems.push(`give "image" or "images", not both`);
  } else {
    const list = "images" in o ? o.images : "image" in o ? [o.image] : [];
    if (!Array.isArray(list)) problems.push(`"images" must be an array of file paths`);
    else if (list.length === 0) problems.push(`no image: every prompt needs "image": "path" or "images": ["path", ...]`);
    else if (list.length > MAX_IMAGES_PER_PROMPT) problems.push(`${list.length} images; a prompt holds at most ${MAX_IMAGES_PER_PROMPT}`);
    else {
      list.forEach((p, i) => {
        if (typeof p === "string" && p !== "") paths.push(p);
        else problems.push(`image ${i + 1} must be a file path, got ${JSON.stringify(p)}`);
      });
    }
  }
  return { question: typeof question === "string" ? question : "", paths, problems };
}

/** An image file's format, size and hash, or what is wrong with it. */
async function checkImage(abs: string): Promise<PromptImage | string> {
  let data: Buffer;
  try {
    data = await readFile(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? `not found (looked for ${abs})`
      : code === "EISDIR"
        ? "is a folder, not an image"
        : `cannot read it (${code ?? (error as Error).message})`;
  }
  try {
    return { path: abs, ...sniffImage(data), hash: sha256Name(data), bytes: data.length };
  } catch (error) {
    if (error instanceof ImageFormatError) return error.message;
    throw error;
  }
}
