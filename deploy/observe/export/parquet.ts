/**
 * One iteration's pairs as a Parquet file: TRL's conversational preference columns, the images
 * embedded as PNG (or the pool's JPEG) bytes in the `datasets` Image feature's struct, and the
 * pair's provenance (authors, scores, judges) as extra columns. The file carries the `datasets`
 * features in its "huggingface" metadata, as `Dataset.to_parquet` writes them.
 */
import { parquetWriteFile } from "hyparquet-writer";
import type { PreferencePair } from "../../../protocol/mod.ts";
import { trlPreferenceRecord } from "../../../actors/trainers/trl.ts";
import { PAIR_FEATURES, datasetsFeatures, parquetSchema } from "./features.ts";
import { imageExtension, type ImageFiles } from "./images.ts";
import type { JudgeScore } from "./judge-scores.ts";

/** A TRL message as the Parquet holds it: every content part has both fields (`text` null for an image). */
interface Message {
  role: string;
  content: { text: string | null; type: string }[];
}

/** One row of a pairs-iter<N>.parquet file (see features.ts for the column types). */
export interface PairRow {
  prompt: Message[];
  chosen: Message[];
  rejected: Message[];
  images: { bytes: Uint8Array | null; path: string }[];
  experiment: string;
  iteration: number;
  prompt_id: string;
  pair_id: string;
  suite: string | null;
  for_peer: string | null;
  chosen_author: string;
  rejected_author: string;
  score_chosen: number;
  score_rejected: number;
  margin: number;
  judges: string[];
  judge_scores: JudgeScore[];
}

const asMessages = (messages: { role: string; content: { type: string; text?: string }[] }[]): Message[] =>
  messages.map((m) => ({ role: m.role, content: m.content.map((c) => ({ text: c.text ?? null, type: c.type })) }));

/** A pair as a row; an image that cannot be had keeps its name with null bytes (`missing` counts them). */
export async function pairRow(
  p: PreferencePair,
  images: ImageFiles,
  extra: { suite?: string; judgeScores?: JudgeScore[] },
): Promise<{ row: PairRow; missing: number }> {
  const record = trlPreferenceRecord(
    p.question,
    p.chosen.text,
    p.rejected.text,
    p.images.map(() => ""),
  );
  let missing = 0;
  const embedded = [];
  for (const ref of p.images) {
    const bytes = (await images.file(ref)) ?? null;
    if (!bytes) missing++;
    // `path` names the image (datasets uses it only when there are no bytes); the bytes are the image.
    embedded.push({ bytes, path: `${ref.hash}.${imageExtension(ref)}` });
  }
  return {
    missing,
    row: {
      prompt: asMessages(record.prompt),
      chosen: asMessages(record.chosen),
      rejected: asMessages(record.rejected),
      images: embedded,
      experiment: p.experiment,
      iteration: p.iteration,
      prompt_id: p.promptId,
      pair_id: p.pairId,
      suite: extra.suite ?? null,
      for_peer: p.forPeer ?? null,
      chosen_author: p.chosen.author,
      rejected_author: p.rejected.author,
      score_chosen: p.chosen.score,
      score_rejected: p.rejected.score,
      margin: p.margin,
      judges: p.judges,
      judge_scores: extra.judgeScores ?? [],
    },
  };
}

/** Writes the rows as one Parquet file (an empty list gives a file with the schema and no rows). */
export function writePairsParquet(file: string, rows: readonly PairRow[]): void {
  parquetWriteFile({
    filename: file,
    schema: parquetSchema(PAIR_FEATURES),
    columnData: PAIR_FEATURES.map(([name]) => ({ name, data: rows.map((r) => r[name as keyof PairRow]) })),
    kvMetadata: [{ key: "huggingface", value: JSON.stringify({ info: { features: datasetsFeatures(PAIR_FEATURES) } }) }],
    createdBy: "panel-of-peers pop export (hyparquet-writer)",
  });
}
