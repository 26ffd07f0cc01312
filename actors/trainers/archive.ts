/**
 * An adapter directory as one blob, so it can travel through the object store (which chunks it)
 * and be named by its content: "POPADPT\0", u32 format version, u32 header length, a JSON header
 * listing the files (sorted, so the same directory always gives the same bytes), then the files'
 * bytes in that order.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { PopError } from "../../protocol/mod.ts";

const MAGIC = Buffer.from("POPADPT\0", "latin1");
const VERSION = 1;

/** The bytes are not an adapter archive, or would write outside the target directory. */
export class AdapterArchiveError extends PopError {}

/** The version name of an adapter: its content hash. */
export function adapterVersion(bytes: Uint8Array): string {
  return `adapter-${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}`;
}

/** Packs every file under `dir` (recursively). */
export async function packDir(dir: string): Promise<Uint8Array> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) files.push(relative(dir, p).split(sep).join("/"));
    }
  };
  await walk(dir);
  if (!files.length) throw new AdapterArchiveError(`adapter directory ${dir} holds no files`);
  files.sort();
  const datas = await Promise.all(files.map((f) => readFile(join(dir, f))));
  const header = Buffer.from(JSON.stringify({ files: files.map((path, i) => ({ path, bytes: datas[i]!.length })) }), "utf8");
  const head = Buffer.alloc(16);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(VERSION, 8);
  head.writeUInt32LE(header.length, 12);
  return new Uint8Array(Buffer.concat([head, header, ...datas]));
}

/**
 * Unpacks into `dir` (created; replaced when it exists). Writes into a sibling temp directory
 * first and renames it, so a crash never leaves a half-written adapter under `dir`.
 */
export async function unpackTo(bytes: Uint8Array, dir: string): Promise<void> {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 16 || !b.subarray(0, 8).equals(MAGIC)) throw new AdapterArchiveError("not an adapter archive (bad magic)");
  if (b.readUInt32LE(8) !== VERSION)
    throw new AdapterArchiveError(`adapter archive format ${b.readUInt32LE(8)} is not supported (this build reads ${VERSION})`);
  const headerLen = b.readUInt32LE(12);
  let files: { path: string; bytes: number }[];
  try {
    files = JSON.parse(b.subarray(16, 16 + headerLen).toString("utf8")).files;
  } catch (error) {
    throw new AdapterArchiveError("adapter archive header is not valid JSON", { cause: error });
  }
  const target = resolve(dir);
  const tmp = `${target}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  let at = 16 + headerLen;
  for (const f of files) {
    const out = resolve(tmp, f.path);
    if (!out.startsWith(tmp + sep) || typeof f.bytes !== "number" || f.bytes < 0)
      throw new AdapterArchiveError(`adapter archive entry '${f.path}' is not a plain relative path`);
    if (at + f.bytes > b.length) throw new AdapterArchiveError("adapter archive is truncated");
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, b.subarray(at, at + f.bytes));
    at += f.bytes;
  }
  if (at !== b.length) throw new AdapterArchiveError(`adapter archive has ${b.length - at} bytes after its last file`);
  await rm(target, { recursive: true, force: true });
  await mkdir(dirname(target), { recursive: true });
  await rename(tmp, target);
}
