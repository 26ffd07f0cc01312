/** What a run's output folder holds, for the closing lines of the demo: each entry, what it is and its size. */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const ABOUT: [RegExp, string][] = [
  [/^report\.json$/, "scores per member, suite and iteration"],
  [/^report\.html$/, "the report: plots, table, training curves, example pairs (one offline file)"],
  [/^pairs-iter\d+\.jsonl$/, "the iteration's preference pairs, TRL's conversational format"],
  [/^pairs-iter\d+\.parquet$/, "the same pairs as a Hugging Face dataset, images embedded"],
  [/^README\.md$/, "the pairs' dataset card: splits, features, load and trl commands"],
  [/^metrics\.jsonl$/, "every scalar, one JSON object a line (for W&B/MLflow imports)"],
  [/^tensorboard$/, "TensorBoard event files, one run per member"],
  [/^images$/, "the pairs' images"],
  [/^logs$/, "each process's log"],
  [/^nats$/, "the JetStream store: every message of the run"],
  [/^creds$/, "per-process keys and the server's permissions"],
];

/** Bytes as "12.3 MB", "4.0 kB", "512 B". */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function sizeOf(path: string): { bytes: number; files: number } {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return { bytes: 0, files: 0 };
  if (!s.isDirectory()) return { bytes: s.size, files: 1 };
  let bytes = 0;
  let files = 0;
  for (const name of readdirSync(path)) {
    const inner = sizeOf(join(path, name));
    bytes += inner.bytes;
    files += inner.files;
  }
  return { bytes, files };
}

/** One line per entry of `dir`: name, size (and file count for folders), what it is. */
export function describeOutputs(dir: string): string[] {
  const names = readdirSync(dir).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const rows = names.map((name) => {
    const path = join(dir, name);
    const isDir = statSync(path).isDirectory();
    const { bytes, files } = sizeOf(path);
    const about = ABOUT.find(([re]) => re.test(name))?.[1] ?? "";
    return { label: isDir ? `${name}/` : name, size: `${formatBytes(bytes)}${isDir ? `, ${files} files` : ""}`, about, bytes };
  });
  const w = Math.max(...rows.map((r) => r.label.length), 4);
  const s = Math.max(...rows.map((r) => r.size.length), 4);
  const total = rows.reduce((a, r) => a + r.bytes, 0);
  return [...rows.map((r) => `  ${r.label.padEnd(w)}  ${r.size.padStart(s)}  ${r.about}`), `  ${"".padEnd(w)}  ${formatBytes(total).padStart(s)}  in all`];
}
