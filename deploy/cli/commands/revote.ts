/** `pop revote`: recompute a stored run's pairs from its verdicts under other voting settings or fewer judges per author. */
import { relative, resolve } from "node:path";
import {
  AGGREGATES,
  FenceView,
  STREAMS,
  VotingConfig,
  readRecord,
  readStored,
  stateKeys,
  subjects,
  BUCKETS,
  getImage,
  kvmOf,
  openBlobs,
} from "../../../protocol/mod.ts";
import { familyOfQuestion } from "../../../actors/models/tiny/world.ts";
import { judgesPerAuthorWarnings } from "../../../coordinator/voting.ts";
import { revote } from "../../observe/revote/revote.ts";
import { UsageError, type Flags } from "../args.ts";
import { connectNats } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { EXPORT_FORMATS, exportPairs, type ExportFormat } from "../../observe/export/export.ts";
import { ImageFiles } from "../../observe/export/images.ts";

export const revoteHelp = `pop revote [options]

Recomputes the preference pairs of a stored run from the verdicts already in JetStream, under
another voting rule, other thresholds or fewer judges per author, without running any model.
Prints, per iteration, how many pairs the stored run had and how many the new rule gives (and
how many are the same).

  --experiment NAME       experiment                                        default: demo
  --min-chosen X          keep a pair only if chosen >= X (0..1)             default: the run's
  --min-margin X          ... and chosen - rejected >= X (0..1)              default: the run's
  --combine RULE          mean (of the five criteria) or correctness        default: the run's
  --aggregate RULE        how judges' scores of a candidate combine:       default: the run's
                          ${AGGREGATES.join(", ")} (all but mean resist hostile judges)
  --pairing P             pooled or per-member                               default: the run's
  --self-judging          count authors' verdicts on their own candidates
  --min-judges N          judges a candidate needs to be voted               default: the run's
  --judges-per-author M   count only the scores of the M judges per author   default: the run's
                          the run would have assigned (protocol/judges.ts)
  --out DIR               also write the new pairs as a dataset, as pop export does
  --format F              ${EXPORT_FORMATS.join(" or ")} (with --out)                    default: parquet

${NATS_OPTIONS_HELP}`;

export async function runRevote(flags: Flags): Promise<void> {
  const experiment = flags.string("experiment") ?? "demo";
  const nats = flags.nats();
  const server = nats.servers;
  const overrides = {
    minChosen: flags.number("min-chosen", { min: 0, max: 1 }),
    minMargin: flags.number("min-margin", { min: 0, max: 1 }),
    combine: flags.string("combine"),
    aggregate: flags.string("aggregate"),
    pairing: flags.string("pairing"),
    selfJudging: flags.bool("self-judging") || undefined,
    minJudges: flags.int("min-judges", { min: 1 }),
  };
  const judgesPerAuthor = flags.int("judges-per-author", { min: 1 });
  const out = flags.string("out");
  const format = flags.string("format") ?? "parquet";
  if (!(EXPORT_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--format must be ${EXPORT_FORMATS.join(" or ")}, not '${format}'`, revoteHelp);
  flags.rejectUnknown();
  const nc = await connectNats(nats, "pop-revote");
  try {
    const kv = await kvmOf(nc).open(BUCKETS.state);
    const config = await readRecord(kv, stateKeys.config(experiment), "experiment");
    if (!config) throw new Error(`experiment '${experiment}' is not stored on ${server}`);
    // Only the flags given replace the run's stored settings (an unset flag is not a default).
    const merged = { ...config.voting, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
    const parsed = VotingConfig.safeParse(merged);
    if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "), revoteHelp);
    const voting = parsed.data;
    const perAuthor = judgesPerAuthor ?? config.judging.judgesPerAuthor;
    process.stdout.write(`revoting '${experiment}' with ${JSON.stringify(voting)}, judges per author: ${perAuthor}\n`);
    for (const warning of judgesPerAuthorWarnings(voting, perAuthor)) process.stdout.write(`warning: ${warning}\n`);

    // A stale coordinator leader's prompts and pairs are not counted (protocol/fence.ts); a run
    // stored before leases has no lease and is read as it is.
    const fence = await FenceView.read(kv, experiment);
    const [prompts, cands, verdicts, pairs] = await Promise.all([
      readStored(nc, STREAMS.prompts.name, subjects.all(experiment, "prompt"), "prompt", { fence }),
      readStored(nc, STREAMS.candidates.name, subjects.all(experiment, "cand"), "candidates"),
      readStored(nc, STREAMS.verdicts.name, subjects.all(experiment, "verdict"), "verdict"),
      readStored(nc, STREAMS.pairs.name, subjects.all(experiment, "pair"), "pair", { fence }),
    ]);
    const panels = new Map<number, string[]>();
    for (const it of new Set(prompts.messages.map((p) => p.iteration))) {
      const record = await readRecord(kv, stateKeys.iteration(experiment, it), "iteration");
      if (record) panels.set(it, record.peers);
    }
    const rows = revote({
      experiment,
      voting,
      judgesPerAuthor: perAuthor,
      panels,
      prompts: prompts.messages,
      candidates: cands.messages,
      verdicts: verdicts.messages,
      pairs: pairs.messages,
    });
    process.stdout.write(`iteration  prompts  stored pairs  revoted pairs  identical\n`);
    for (const { iteration: it, prompts: n, stored, revoted: b, same } of rows) {
      process.stdout.write(
        `${String(it).padStart(9)}  ${String(n).padStart(7)}  ${String(stored).padStart(12)}  ${String(b.length).padStart(13)}  ${String(same).padStart(9)}\n`,
      );
    }
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((a, r) => a + f(r), 0);
    process.stdout.write(
      `with ${perAuthor} judge${perAuthor === 1 ? "" : "s"} per author: ${sum((r) => r.same)} of the ${sum((r) => r.stored)} stored pairs stay the same (${sum((r) => r.revoted.length)} revoted pairs)\n`,
    );
    if (out) {
      // The same dataset as pop export writes (images embedded or beside the JSONL), so the revoted pairs train as they are.
      const dir = resolve(out);
      const blobs = await openBlobs(nc);
      const images = new ImageFiles((ref) => getImage(blobs, ref).catch(() => undefined));
      const result = await exportPairs(
        dir,
        {
          experiment,
          pairs: rows.flatMap((r) => r.revoted),
          verdicts: verdicts.messages,
          iterations: rows.map((r) => r.iteration),
          config: { ...config, voting },
        },
        { format: format as ExportFormat, images, suiteOf: familyOfQuestion },
      );
      process.stdout.write(`wrote the revoted pairs as ${format} to ${dir}: ${result.files.map((f) => relative(dir, f)).join(", ")}\n`);
      if (result.missingImages)
        process.stdout.write(`warning: ${result.missingImages} images are no longer in the server's object store: named, without their bytes\n`);
    }
  } finally {
    await nc.close();
  }
}
