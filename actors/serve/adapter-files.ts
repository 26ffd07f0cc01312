/**
 * Where `pop serve` may load adapters from: regular files under one configured root, read with a
 * byte cap. A client names a `lora_path`; the server must not become a way to read (or hang on)
 * anything else the process can open — /dev/zero, a FIFO, a symlink out of the root — nor tell a
 * client which files exist outside the root.
 *
 * ```ts
 * const bytes = await readAdapterFile({ root: "/runs", maxBytes: 64 << 20 }, "/runs/peer/adapters/v1");
 * ```
 */
import { constants } from "node:fs";
import { open, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { AdapterNotFoundError, AdapterPathError, bytes } from "./errors.ts";

/** The boundary adapters load within. */
export interface AdapterBounds {
  /** The folder every adapter must lie under (after symlinks are resolved). */
  root: string;
  /** Largest adapter file read, in bytes. */
  maxBytes: number;
}

/** The file a directory adapter keeps its checkpoint in (what the tiny trainer writes). */
export const ADAPTER_FILE = "model.bin";

/** Whether `path` is `dir` or lies under it (both absolute and normalised). */
export function isWithin(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/**
 * The bytes of the adapter at `path` (relative paths are taken under the root): a regular file,
 * or a directory holding {@link ADAPTER_FILE}, whose real path lies under the root. Throws
 * {@link AdapterPathError} (400) for a path outside the root, a file that is not regular or one
 * over the cap; {@link AdapterNotFoundError} (404) when nothing is there — also when a symlink
 * leads out of the root, so the answer never tells what exists outside it.
 */
export async function readAdapterFile(bounds: AdapterBounds, path: string): Promise<Uint8Array> {
  const root = resolve(bounds.root);
  const asked = resolve(root, path);
  const realRoot = await realpath(root).catch(() => undefined);
  // Refused before touching the file system: the answer is the same whether the path exists or not.
  if (!isWithin(asked, root) && !(realRoot && isWithin(asked, realRoot))) {
    throw new AdapterPathError(`'${path}' is outside the adapter root ${root} (pop serve --adapter-dir)`);
  }
  const notFound = () => new AdapterNotFoundError(`nothing to load under the adapter root ${root}`);
  if (!realRoot) throw notFound();
  const inside = async (p: string, missing = notFound): Promise<string> => {
    const real = await realpath(p).catch(() => undefined);
    // Outside through a symlink reads as missing: existence out there is none of the client's business.
    if (!real || !isWithin(real, realRoot)) throw missing();
    return real;
  };
  let file = await inside(asked);
  if ((await stat(file)).isDirectory()) {
    file = await inside(
      join(file, ADAPTER_FILE),
      () => new AdapterNotFoundError(`the folder holds no ${ADAPTER_FILE} under the adapter root, where a tiny adapter keeps its checkpoint`),
    );
  }
  // O_NONBLOCK: opening a FIFO never waits for a writer; O_NOFOLLOW: the file is the one checked.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT" || error.code === "ELOOP") throw notFound();
    throw new AdapterPathError(`'${path}' cannot be opened (${error.code ?? "error"})`);
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new AdapterPathError(`'${path}' is not a regular file (nor a directory holding ${ADAPTER_FILE})`);
    if (info.size > bounds.maxBytes)
      throw new AdapterPathError(`'${path}' is ${info.size} bytes, over the adapter limit of ${bytes(bounds.maxBytes)} (--max-adapter-bytes)`);
    // One byte more than the size seen: a file that grows while read is refused, not followed.
    const buffer = Buffer.alloc(info.size + 1);
    let size = 0;
    for (let n = -1; n !== 0 && size < buffer.length; size += n) n = (await handle.read(buffer, size, buffer.length - size, size)).bytesRead;
    if (size > info.size) throw new AdapterPathError(`'${path}' changed while it was read; load it again once it is written`);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, size);
  } finally {
    await handle.close();
  }
}
