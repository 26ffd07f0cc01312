/** `pop revote`: recompute a stored run's pairs from its verdicts under other voting settings. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { AGGREGATES, STREAMS, VotingConfig, readRecord, readStored, stateKeys, subjects, BUCKETS, kvmOf, type PreferencePair } from "../../../protocol/mod.ts";
import { addToTally, newTally, votePrompt, type PromptTally } from "../../../coordinator/voting.ts";
import { UsageError, type Flags } from "../args.ts";
import { connectNats } from "../connect.ts";
import { NATS_OPTIONS_HELP } from "../../ops/nats-options.ts";
import { trlRecord } from "../../observe/report/report.ts";

export const revoteHelp = `pop revote [options]

Recomputes the preference pairs of a stored run from the verdicts already in JetStream, under
another voting rule or other thresholds, without running any model. Prints, per iteration, how
many pairs the stored run had and how many the new rule gives (and how many are the same).

  --experiment NAME       experiment                                        default: demo
  --min-chosen X          keep a pair only if chosen >= X (0..1)             default: the run's
  --min-margin X          ... and chosen - rejected >= X (0..1)              default: the run's
  --combine RULE          mean (of the five criteria) or correctness        default: the run's
  --aggregate RULE        how judges' scores of a candidate combine:       default: the run's
                          ${AGGREGATES.join(", ")} (all but mean resist hostile judges)
  --pairing P             pooled or per-member                               default: the run's
  --self-judging          count authors' verdicts on their own candidates
  --min-judges N          judges a candidate needs to be voted               default: the run's
  --out DIR               also write the new pairs as pairs-iter<N>.jsonl

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
  const out = flags.string("out");
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
    process.stdout.write(`revoting '${experiment}' with ${JSON.stringify(voting)}\n`);

    const [prompts, cands, verdicts, pairs] = await Promise.all([
      readStored(nc, STREAMS.prompts.name, subjects.all(experiment, "prompt"), "prompt"),
      readStored(nc, STREAMS.candidates.name, subjects.all(experiment, "cand"), "candidates"),
      readStored(nc, STREAMS.verdicts.name, subjects.all(experiment, "verdict"), "verdict"),
      readStored(nc, STREAMS.pairs.name, subjects.all(experiment, "pair"), "pair"),
    ]);
    const tallies = new Map<string, PromptTally>();
    for (const p of prompts.messages) tallies.set(`${p.iteration}|${p.promptId}`, newTally(p));
    for (const m of [...cands.messages, ...verdicts.messages]) {
      const t = tallies.get(`${m.iteration}|${m.promptId}`);
      if (t) addToTally(t, m);
    }
    const revoted = new Map<number, PreferencePair[]>();
    for (const t of tallies.values()) {
      const list = revoted.get(t.prompt.iteration) ?? [];
      list.push(...votePrompt(t, voting, { now: t.prompt.createdAt }));
      revoted.set(t.prompt.iteration, list);
    }
    const stored = new Map<number, PreferencePair[]>();
    for (const p of pairs.messages) stored.set(p.iteration, [...(stored.get(p.iteration) ?? []), p]);
    const sig = (p: PreferencePair) => `${p.pairId}|${p.chosen.candidateId}|${p.rejected.candidateId}`;
    process.stdout.write(`iteration  prompts  stored pairs  revoted pairs  identical\n`);
    for (const it of [...new Set([...revoted.keys(), ...stored.keys()])].sort((a, b) => a - b)) {
      const a = new Set((stored.get(it) ?? []).map(sig));
      const b = revoted.get(it) ?? [];
      const same = b.filter((p) => a.has(sig(p))).length;
      const n = [...tallies.values()].filter((t) => t.prompt.iteration === it).length;
      process.stdout.write(
        `${String(it).padStart(9)}  ${String(n).padStart(7)}  ${String(a.size).padStart(12)}  ${String(b.length).padStart(13)}  ${String(same).padStart(9)}\n`,
      );
      if (out) {
        const dir = resolve(out);
        mkdirSync(dir, { recursive: true });
        writeFileSync(
          join(dir, `pairs-iter${it}.jsonl`),
          b
            .map((p) =>
              JSON.stringify(
                trlRecord(
                  p,
                  p.images.map((r) => `images/${r.hash}.png`),
                ),
              ),
            )
            .join("\n") + (b.length ? "\n" : ""),
        );
      }
    }
    if (out) process.stdout.write(`wrote the revoted pairs to ${resolve(out)}\n`);
  } finally {
    await nc.close();
  }
}
