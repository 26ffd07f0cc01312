/** `pop report`: write the report files of a stored run. */
import { familyOfQuestion } from "../../../actors/models/tiny/world.ts";
import { resolve } from "node:path";
import { getImage, openBlobs } from "../../../protocol/mod.ts";
import type { Flags } from "../args.ts";
import { connectNats } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { collectRun } from "../../observe/report/collect.ts";
import { formatTable, writeReport } from "../../observe/report/report.ts";
import { truthFor } from "../../observe/precision/source.ts";

export const reportHelp = `pop report [options]

Reads a run back from JetStream and writes report.json, pairs-iter<N>.jsonl (+ images/, named
by absolute paths), report.html and the run's scalars (metrics.jsonl; tensorboard/<member>/ event
files for 'tensorboard --logdir DIR/tensorboard'), and prints the member x suite x iteration
table and the pair precision (pairs graded against the tiny world's truth, or a benchmark file's
answers with --bench). For the pairs as a Parquet dataset with the images embedded: pop export.

  --experiment NAME    experiment                                           default: demo
  --out DIR            output directory                                     default: runs/report-<experiment>
  --bench FILE         a benchmark JSONL (pop actor --bench): pairs whose prompt is one of its items
                       are graded against its answers too (the tiny world's pool always is)

${NATS_OPTIONS_HELP}`;

export async function runReport(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment") ?? "demo";
  const out = resolve(flags.string("out") ?? `runs/report-${experiment}`);
  const bench = flags.string("bench");
  const nats = flags.nats();
  const server = nats.servers;
  flags.rejectUnknown();
  const truth = await truthFor(bench);
  const nc = await connectNats(nats, "pop-report");
  try {
    const run = await collectRun(nc, experiment);
    if (run.evaluations.length === 0) throw new Error(`no evaluations stored for experiment '${experiment}' on ${server}`);
    const blobs = await openBlobs(nc);
    const report = await writeReport(out, run, (ref) => getImage(blobs, ref).catch(() => undefined), familyOfQuestion, { truthOf: truth.truthOf });
    process.stdout.write(formatTable(report) + `\n\nwrote ${out}\n`);
    const note = truth.note();
    if (note) process.stdout.write(note + "\n");
  } finally {
    await nc.close();
  }
}
