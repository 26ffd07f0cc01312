/** `pop export`: a stored run's preference pairs as a dataset (Parquet with a dataset card, or JSONL). */
import { relative, resolve } from "node:path";
import { familyOfQuestion } from "../../../actors/models/tiny/world.ts";
import { getImage, openBlobs } from "../../../protocol/mod.ts";
import { UsageError, type Flags } from "../args.ts";
import { connectNats } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { collectRun } from "../../observe/report/collect.ts";
import { EXPORT_FORMATS, exportPairs, type ExportFormat } from "../../observe/export/export.ts";
import { ImageFiles } from "../../observe/export/images.ts";
import { readVerdicts } from "../../observe/export/read.ts";
import { loadDatasetLine } from "../../observe/export/card.ts";

export const exportHelp = `pop export [options]

Reads a run's preference pairs back from JetStream and writes them as a dataset.

parquet: one pairs-iter<N>.parquet per iteration with pairs: TRL's conversational preference
columns (prompt, chosen, rejected), the images embedded as PNG bytes in the Hugging Face datasets
Image feature (images), and the pair's experiment, iteration, prompt_id, pair_id, suite,
for_peer, chosen_author, rejected_author, score_chosen, score_rejected, margin, judges and
judge_scores (each judge's own score of both answers); plus a dataset card (README.md) with the
split of each iteration and the trl command line that trains on it. Loads from any directory:
  load_dataset("parquet", data_files={"iter1": "DIR/pairs-iter1.parquet"})   or   load_dataset("DIR")

jsonl: pairs-iter<N>.jsonl (the same records as pop report writes) with the images in images/,
named by absolute paths, so that load_dataset("json", ...) finds them from any directory as long
as the folder stays where it was written.

  --experiment NAME    experiment                                           default: demo
  --format F           ${EXPORT_FORMATS.join(" or ")}                                     default: parquet
  --out DIR            output directory                                     default: runs/export-<experiment>

${NATS_OPTIONS_HELP}`;

export async function runExport(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment") ?? "demo";
  const format = flags.string("format") ?? "parquet";
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--format must be ${EXPORT_FORMATS.join(" or ")}, not '${format}'`, exportHelp);
  const out = resolve(flags.string("out") ?? `runs/export-${experiment}`);
  const nats = flags.nats();
  flags.rejectUnknown();
  const nc = await connectNats(nats, "pop-export");
  try {
    const [run, verdicts] = await Promise.all([collectRun(nc, experiment), readVerdicts(nc, experiment)]);
    if (run.pairs.length === 0 && !run.config) throw new Error(`experiment '${experiment}' is not stored on ${nats.servers} (no settings, no pairs)`);
    const blobs = await openBlobs(nc);
    const images = new ImageFiles((ref) => getImage(blobs, ref).catch(() => undefined));
    const trained = [...new Set(run.evaluations.map((e) => e.iteration))].filter((i) => i > 0);
    const result = await exportPairs(
      out,
      { experiment, pairs: run.pairs, verdicts, iterations: trained, ...(run.config ? { config: run.config } : {}) },
      { format: format as ExportFormat, images, suiteOf: familyOfQuestion },
    );
    const lines = [`wrote ${result.pairs} pairs of '${experiment}' as ${format} to ${out}:`, ...result.files.map((f) => `  ${relative(out, f)}`)];
    if (result.missingImages) lines.push(`warning: ${result.missingImages} images are no longer in the server's object store: named, without their bytes`);
    if (result.splits.length) lines.push(`load it with: ${loadDatasetLine(out, result.splits)}`, `train on it: see ${resolve(out, "README.md")}`);
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await nc.close();
  }
}
