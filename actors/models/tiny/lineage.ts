/**
 * Which base a tiny checkpoint was trained from, read from its header alone (the layout
 * model.ts' parseWeights reads: magic, format version, header length, JSON header): the member's
 * name its metadata carries through training (the trainer exports the base's metadata with the new
 * weights) and its architecture. `pop serve` refuses an adapter whose base is not the one it
 * serves, as a LoRA made for one base model is refused by another.
 */
import { FORMAT_VERSION, MAGIC } from "./format.ts";

/** What a checkpoint says of its base. */
export interface TinyLineage {
  /** The member it was made for (`meta.name`), when the file says. */
  name?: string;
  /** Its architecture: the config's sizes and options (absent options read as false), and its vocabulary. */
  architecture: Record<string, unknown>;
}

/** The lineage in a tiny weights file's header; throws on a file that is not one. */
export function tinyLineage(bytes: Uint8Array): TinyLineage {
  if (bytes.length < 16 || !MAGIC.every((b, i) => bytes[i] === b)) throw new Error("not a tiny weights file (bad magic)");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== FORMAT_VERSION) throw new Error(`unsupported tiny weights format version ${version}`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + dv.getUint32(12, true)))) as {
    config: Record<string, unknown>;
    meta?: Record<string, unknown>;
  };
  // Older files leave the boolean options out: they are off.
  const architecture = { posQuery: false, attSkip: false, secondLook: false, ...header.config };
  const name = header.meta?.name;
  return { name: typeof name === "string" ? name : undefined, architecture };
}

/** Why an adapter of lineage `adapter` does not fit the served `base`, or undefined when it does. */
export function lineageMismatch(base: TinyLineage, adapter: TinyLineage): string | undefined {
  const keys = [...new Set([...Object.keys(base.architecture), ...Object.keys(adapter.architecture)])];
  const differ = keys.filter((k) => JSON.stringify(base.architecture[k]) !== JSON.stringify(adapter.architecture[k]));
  if (differ.length) {
    const show = (a: Record<string, unknown>, k: string) => (k === "vocab" ? "another vocabulary" : JSON.stringify(a[k]));
    const what = differ.map((k) =>
      k === "vocab" ? "its vocabulary differs" : `${k} ${show(adapter.architecture, k)} (the base has ${show(base.architecture, k)})`,
    );
    return `${adapter.name ? `it was made for '${adapter.name}' and ` : ""}its architecture differs: ${what.join(", ")}`;
  }
  if (base.name && adapter.name && base.name !== adapter.name) return `it was trained from '${adapter.name}', but this server serves '${base.name}'`;
  return undefined;
}
