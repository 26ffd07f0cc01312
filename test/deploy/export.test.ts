/**
 * `pop export`: a stored run's pairs, read back from a real server, written as Parquet and read
 * back with an independent reader (DuckDB), and as JSONL whose image paths resolve from anywhere.
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { decodeRgb } from "../../actors/images/codec.ts";
import { Flags } from "../../deploy/cli/args.ts";
import { exportHelp, runExport } from "../../deploy/cli/commands/export.ts";
import { ensureTopology, openBlobs, publishMessage, putImage, type ImageRef, type PreferencePair } from "../../protocol/mod.ts";
import * as msg from "../support/messages.ts";
import { cleanup, connectTo, startServer } from "../support/nats.ts";
import { removeScratch, scratchDir } from "../support/scratch.ts";
import yaml from "js-yaml";

const EXPERIMENT = "exp";
const SIDE = 32;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A SIDE x SIDE RGB image, different for each seed. */
function pixels(seed: number): Uint8Array {
  const data = new Uint8Array(SIDE * SIDE * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31) & 0xff;
  return data;
}

/** The dataset card's front matter, read by an independent YAML parser. */
function parseYaml(text: string): unknown {
  return yaml.load(text);
}

describe("pop export", () => {
  let url: string;
  let dir: string;
  let duck: DuckDBConnection;
  const pairs: PreferencePair[] = [];
  const refs: ImageRef[] = [];

  beforeAll(async () => {
    dir = scratchDir("pop-export-");
    url = (await startServer()).url;
    const nc = await connectTo(url);
    await ensureTopology(nc);
    const blobs = await openBlobs(nc);
    refs.push(await putImage(blobs, { width: SIDE, height: SIDE, data: pixels(1) }), await putImage(blobs, { width: SIDE, height: SIDE, data: pixels(2) }));
    const js = jetstream(nc);
    // Iteration 1: two pairs (one with two images); iteration 2: one pair. Bob and carol judged.
    const spec = [
      { iteration: 1, promptId: "p1", images: [refs[0]!], question: "What colour is the square?", chosen: "red", rejected: "two" },
      { iteration: 1, promptId: "p2", images: [refs[0]!, refs[1]!], question: "How many shapes?", chosen: "2", rejected: "a dog" },
      { iteration: 2, promptId: "p3", images: [refs[1]!], question: "What shape is it?", chosen: "circle", rejected: "blue" },
    ];
    for (const s of spec) {
      const chosenId = msg.candidateId(s.promptId, "alice", 0);
      const rejectedId = msg.candidateId(s.promptId, "bob", 0);
      const pair = msg.pair({
        experiment: EXPERIMENT,
        iteration: s.iteration,
        pairId: `${s.iteration}:${s.promptId}`,
        promptId: s.promptId,
        question: s.question,
        images: s.images,
        chosen: { candidateId: chosenId, author: "alice", text: s.chosen, score: 0.875 },
        rejected: { candidateId: rejectedId, author: "bob", text: s.rejected, score: 0.125 },
        margin: 0.75,
        judges: ["bob", "carol"],
      });
      pairs.push(pair);
      await publishMessage(js, pair);
      const common = { experiment: EXPERIMENT, iteration: s.iteration, promptId: s.promptId };
      // bob scores alice's answer 5 (1.0) and his own 5, which does not count (no self-judging);
      // carol scores alice's 4 (0.75) and bob's 1 (0.0).
      await publishMessage(js, msg.verdict({ ...common, judge: "bob", scored: { alice: [5], bob: [5] } }));
      await publishMessage(js, msg.verdict({ ...common, judge: "carol", scored: { alice: [4], bob: [1] } }));
    }
    const instance = await DuckDBInstance.create(":memory:");
    duck = await instance.connect();
  }, 60_000);

  afterAll(async () => {
    duck?.closeSync();
    await cleanup();
    removeScratch(dir);
  });

  const run = async (args: string[]) => {
    const out = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      await runExport(new Flags([...args, "--server", url, "--experiment", EXPERIMENT], exportHelp));
      return out.mock.calls.map((c) => String(c[0])).join("");
    } finally {
      out.mockRestore();
    }
  };
  const rows = async (sql: string) => (await duck.runAndReadAll(sql)).getRowObjectsJson();

  it("writes one Parquet file per iteration that DuckDB reads back: TRL's columns, PNG images, provenance", async () => {
    const out = join(dir, "parquet");
    const printed = await run(["--out", out]);
    expect(printed).toContain(`wrote 3 pairs of '${EXPERIMENT}' as parquet`);
    expect(printed).toContain(`load_dataset("parquet", data_files={"iter1": "${out}/pairs-iter1.parquet", "iter2": "${out}/pairs-iter2.parquet"})`);
    const file = (i: number) => join(out, `pairs-iter${i}.parquet`);

    // Row count = the iteration's pairs.
    expect(await rows(`select count(*)::int as n from read_parquet('${file(1)}')`)).toEqual([{ n: 2 }]);
    expect(await rows(`select count(*)::int as n from read_parquet('${file(2)}')`)).toEqual([{ n: 1 }]);

    // The types the datasets Image feature and TRL expect.
    const types = Object.fromEntries(
      (await rows(`describe select * from read_parquet('${file(1)}')`)).map((r) => [r.column_name as string, (r.column_type as string).replace(/"/g, "")]),
    );
    expect(types.images).toBe("STRUCT(bytes BLOB, path VARCHAR)[]");
    expect(types.prompt).toBe("STRUCT(content STRUCT(text VARCHAR, type VARCHAR)[], role VARCHAR)[]");
    expect(types.chosen).toBe(types.prompt);
    expect(types.judge_scores).toBe("STRUCT(judge VARCHAR, chosen DOUBLE, rejected DOUBLE)[]");
    expect(types.iteration).toBe("INTEGER");

    const [p1, p2] = await rows(`select * exclude (images) from read_parquet('${file(1)}') order by prompt_id`);
    expect(p1!.prompt).toEqual([
      {
        content: [
          { text: null, type: "image" },
          { text: "What colour is the square?", type: "text" },
        ],
        role: "user",
      },
    ]);
    expect(p1!.chosen).toEqual([{ content: [{ text: "red", type: "text" }], role: "assistant" }]);
    expect(p1!.rejected).toEqual([{ content: [{ text: "two", type: "text" }], role: "assistant" }]);
    expect((p2!.prompt as { content: { type: string }[] }[])[0]!.content.map((c) => c.type)).toEqual(["image", "image", "text"]);
    expect(p1).toMatchObject({
      experiment: EXPERIMENT,
      iteration: 1,
      prompt_id: "p1",
      pair_id: "1:p1",
      suite: null,
      for_peer: null,
      chosen_author: "alice",
      rejected_author: "bob",
      score_chosen: 0.875,
      score_rejected: 0.125,
      margin: 0.75,
      judges: ["bob", "carol"],
      judge_scores: [
        { judge: "bob", chosen: 1, rejected: null },
        { judge: "carol", chosen: 0.75, rejected: 0 },
      ],
    });

    // Image bytes are PNG files of the stored 32x32 pixels.
    const images = (await duck.runAndReadAll(`select prompt_id, images from read_parquet('${file(1)}') order by prompt_id`)).getRowObjects();
    const list = (images[1]!.images as { items: { entries: { bytes: { bytes: Uint8Array }; path: string } }[] }).items;
    expect(list).toHaveLength(2);
    expect(list.map((i) => i.entries.path)).toEqual(refs.map((r) => `${r.hash}.png`));
    list.forEach((image, n) => {
      const png = Buffer.from(image.entries.bytes.bytes);
      expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
      expect(png.subarray(12, 16).toString("latin1")).toBe("IHDR");
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([SIDE, SIDE]);
      // The pixels survive, read back by a PNG decoder (pngjs, under decodeRgb).
      expect(decodeRgb({ format: "png", width: SIDE, height: SIDE, data: png }).data).toEqual(pixels(n + 1));
    });

    // The file carries the datasets features, with the Image feature, as Dataset.to_parquet writes them.
    const [meta] = await rows(`select decode(value) as v from parquet_kv_metadata('${file(1)}') where decode(key) = 'huggingface'`);
    const features = (JSON.parse(meta!.v as string) as { info: { features: Record<string, unknown> } }).info.features;
    expect(features.images).toEqual([{ _type: "Image" }]);
    expect(features.prompt).toEqual([
      { content: [{ text: { dtype: "string", _type: "Value" }, type: { dtype: "string", _type: "Value" } }], role: { dtype: "string", _type: "Value" } },
    ]);
  });

  it("writes a dataset card whose YAML front matter parses and names existing data files", async () => {
    const out = join(dir, "parquet");
    const card = readFileSync(join(out, "README.md"), "utf8");
    const front = /^---\n([\s\S]*?)\n---\n/.exec(card);
    expect(front).not.toBeNull();
    const meta = parseYaml(front![1]!) as {
      license: string;
      tags: string[];
      configs: { config_name: string; data_files: { split: string; path: string }[] }[];
      dataset_info: { features: { name: string; dtype?: string; list?: unknown }[]; splits: { name: string; num_examples: number }[] };
    };
    expect(meta.license).toBe("other");
    expect(meta.tags).toEqual(expect.arrayContaining(["dpo", "simpo", "vision"]));
    expect(meta.configs).toEqual([
      {
        config_name: "default",
        data_files: [
          { split: "iter1", path: "pairs-iter1.parquet" },
          { split: "iter2", path: "pairs-iter2.parquet" },
        ],
      },
    ]);
    for (const f of meta.configs[0]!.data_files) expect(existsSync(join(out, f.path))).toBe(true);
    expect(meta.dataset_info.splits).toEqual([
      { name: "iter1", num_examples: 2 },
      { name: "iter2", num_examples: 1 },
    ]);
    const features = Object.fromEntries(meta.dataset_info.features.map(({ name, ...f }) => [name, f]));
    expect(features.images).toEqual({ list: "image" });
    expect(features.iteration).toEqual({ dtype: "int32" });
    expect(features.judges).toEqual({ list: "string" });
    expect(features.prompt).toEqual({
      list: [
        {
          name: "content",
          list: [
            { name: "text", dtype: "string" },
            { name: "type", dtype: "string" },
          ],
        },
        { name: "role", dtype: "string" },
      ],
    });
    expect(card).toContain(`trl dpo \\\n  --model_name_or_path`);
    expect(card).toContain(`--dataset_name ${out} \\\n  --dataset_train_split iter2`);
    expect(card).toContain(`load_dataset("parquet", data_files={"iter1": "${out}/pairs-iter1.parquet", "iter2": "${out}/pairs-iter2.parquet"})`);
  });

  it("writes JSONL whose image paths are absolute and exist", async () => {
    const out = join(dir, "jsonl");
    await run(["--out", out, "--format", "jsonl"]);
    const records = readFileSync(join(out, "pairs-iter1.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { images: string[]; chosen: unknown; prompt_id: string });
    expect(records.map((r) => r.prompt_id).sort()).toEqual(["p1", "p2"]);
    for (const path of records.flatMap((r) => r.images)) {
      expect(isAbsolute(path)).toBe(true);
      expect([...readFileSync(path).subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    }
    expect(existsSync(join(out, "README.md"))).toBe(false);
  });

  it("refuses an unknown format", async () => {
    await expect(run(["--out", join(dir, "x"), "--format", "csv"])).rejects.toThrow(/--format must be parquet or jsonl, not 'csv'/);
  });
});
