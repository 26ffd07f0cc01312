/**
 * `npm run schemas`: writes the published contract (the JSON Schemas of the NATS messages and of
 * the process backend's wire, and the AsyncAPI document) into protocol/published/. `--check` writes nothing and exits 1 when the checked-in files differ.
 * The output is deterministic: keys in generation order, two-space JSON, a final newline; the
 * folder is excluded from Prettier as generated.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { asyncApiDocument } from "./asyncapi.ts";
import { MESSAGE_KINDS, messageSchema, schemaFileName } from "./json-schemas.ts";
import { PROCESS_SCHEMA_NAMES, processSchema, processSchemaFile } from "./process-schemas.ts";
import { scriptFlags } from "../../cli/script-flags.ts";

/** Where the published contract lives. */
export const PUBLISHED_DIR = fileURLToPath(new URL("../../../protocol/published/", import.meta.url));

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Every published file: its path relative to {@link PUBLISHED_DIR} and its content. */
export function publishedFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const kind of MESSAGE_KINDS) files.set(join("schemas", schemaFileName(kind)), json(messageSchema(kind)));
  for (const name of PROCESS_SCHEMA_NAMES) files.set(processSchemaFile(name), json(processSchema(name)));
  files.set("asyncapi.json", json(asyncApiDocument()));
  return files;
}

/** The files now in the folder (relative paths), to find stale ones. */
export function existingFiles(dir = PUBLISHED_DIR): string[] {
  const walk = (sub: string): string[] => {
    let entries;
    try {
      entries = readdirSync(join(dir, sub), { withFileTypes: true });
    } catch {
      return [];
    }
    return entries.flatMap((e) => (e.isDirectory() ? walk(join(sub, e.name)) : [join(sub, e.name)]));
  };
  return walk("").sort();
}

/** What differs between the folder and the generated files: changed, missing or stale paths. */
export function drift(dir = PUBLISHED_DIR): string[] {
  const files = publishedFiles();
  const out: string[] = [];
  for (const [path, content] of files) {
    let have: string | undefined;
    try {
      have = readFileSync(join(dir, path), "utf8");
    } catch {
      have = undefined;
    }
    if (have === undefined) out.push(`missing: ${path}`);
    else if (have !== content) out.push(`changed: ${path}`);
  }
  for (const path of existingFiles(dir)) if (!files.has(path)) out.push(`stale: ${path}`);
  return out;
}

function write(dir = PUBLISHED_DIR): void {
  const files = publishedFiles();
  for (const path of existingFiles(dir)) if (!files.has(path)) rmSync(join(dir, path));
  for (const [path, content] of files) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  console.log(`wrote ${files.size} files to ${dir}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const flags = scriptFlags(
    "schemas",
    `npm run schemas [-- --check]

Writes protocol/published/ (JSON Schemas and the AsyncAPI document) from the protocol's zod schemas.

  --check    write nothing; exit 1 if protocol/published/ is out of date`,
  );
  const check = flags.bool("check");
  flags.rejectUnknown();
  if (check) {
    const found = drift();
    if (found.length) {
      console.error(`protocol/published/ is out of date (run npm run schemas):\n  ${found.join("\n  ")}`);
      process.exit(1);
    }
    console.log("protocol/published/ is current");
  } else {
    write();
  }
}
