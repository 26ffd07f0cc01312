/**
 * The exported dataset's columns, described once and rendered three ways: as the Parquet
 * schema, as the Hugging Face `datasets` features JSON that the Parquet file carries in its
 * "huggingface" key-value metadata (so `load_dataset("parquet", …)` decodes `images` as PIL
 * images without the card), and as the dataset card's `dataset_info.features` YAML.
 */
import type { SchemaElement } from "hyparquet-writer";

/** A column's type: a scalar, the `datasets` Image feature, a list or a struct (fields in order). */
export type Feature = { value: "string" | "int32" | "float64" } | { image: true } | { list: Feature } | { struct: [string, Feature][] };

const string: Feature = { value: "string" };
const float64: Feature = { value: "float64" };
/** TRL's conversational message: `content` parts of `{type: "image"}` or `{type: "text", text}`. */
const messages: Feature = {
  list: {
    struct: [
      [
        "content",
        {
          list: {
            struct: [
              ["text", string],
              ["type", string],
            ],
          },
        },
      ],
      ["role", string],
    ],
  },
};

/** Every column of a pairs-iter<N>.parquet file, in order. */
export const PAIR_FEATURES: [string, Feature][] = [
  ["prompt", messages],
  ["chosen", messages],
  ["rejected", messages],
  ["images", { list: { image: true } }],
  ["experiment", string],
  ["iteration", { value: "int32" }],
  ["prompt_id", string],
  ["pair_id", string],
  ["suite", string],
  ["for_peer", string],
  ["chosen_author", string],
  ["rejected_author", string],
  ["score_chosen", float64],
  ["score_rejected", float64],
  ["margin", float64],
  ["judges", { list: string }],
  [
    "judge_scores",
    {
      list: {
        struct: [
          ["judge", string],
          ["chosen", float64],
          ["rejected", float64],
        ],
      },
    },
  ],
];

/** The Parquet schema (flattened, depth first) of the columns; every field is nullable. */
export function parquetSchema(columns: [string, Feature][]): SchemaElement[] {
  const out: SchemaElement[] = [{ name: "root", num_children: columns.length }];
  const add = (name: string, f: Feature): void => {
    if ("value" in f) {
      if (f.value === "string") out.push({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" });
      else out.push({ name, type: f.value === "int32" ? "INT32" : "DOUBLE", repetition_type: "OPTIONAL" });
    } else if ("image" in f) {
      // The datasets Image feature's storage: struct<bytes: binary, path: string>.
      out.push({ name, repetition_type: "OPTIONAL", num_children: 2 });
      out.push({ name: "bytes", type: "BYTE_ARRAY", repetition_type: "OPTIONAL" });
      out.push({ name: "path", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" });
    } else if ("list" in f) {
      // The standard three-level list, which pyarrow and DuckDB read as list<element>.
      out.push({ name, repetition_type: "OPTIONAL", converted_type: "LIST", num_children: 1 });
      out.push({ name: "list", repetition_type: "REPEATED", num_children: 1 });
      add("element", f.list);
    } else {
      out.push({ name, repetition_type: "OPTIONAL", num_children: f.struct.length });
      for (const [n, sub] of f.struct) add(n, sub);
    }
  };
  for (const [name, f] of columns) add(name, f);
  return out;
}

/** The features as `datasets` serialises them (Features.to_dict); a list is `[feature]`, which datasets 3 and 4 both read. */
export function datasetsFeatures(columns: [string, Feature][]): Record<string, unknown> {
  const json = (f: Feature): unknown => {
    if ("value" in f) return { dtype: f.value, _type: "Value" };
    if ("image" in f) return { _type: "Image" };
    if ("list" in f) return [json(f.list)];
    return Object.fromEntries(f.struct.map(([n, sub]) => [n, json(sub)]));
  };
  return Object.fromEntries(columns.map(([n, f]) => [n, json(f)]));
}

/** The card's `dataset_info.features` YAML (the Hub's simplified form), indented by `indent` spaces. */
export function featuresYaml(columns: [string, Feature][], indent: number): string[] {
  const lines: string[] = [];
  // One field of a struct (or a column): "- name: x" then its type at the field's indentation.
  const field = (name: string, f: Feature, pad: string): void => {
    lines.push(`${pad}- name: ${name}`);
    type_(f, `${pad}  `);
  };
  const type_ = (f: Feature, pad: string): void => {
    if ("value" in f) lines.push(`${pad}dtype: ${f.value}`);
    else if ("image" in f) lines.push(`${pad}dtype: image`);
    else if ("list" in f) {
      const inner = f.list;
      if ("value" in inner) lines.push(`${pad}list: ${inner.value}`);
      else if ("image" in inner) lines.push(`${pad}list: image`);
      else if ("struct" in inner) {
        lines.push(`${pad}list:`);
        for (const [n, sub] of inner.struct) field(n, sub, pad);
      } else {
        lines.push(`${pad}list:`);
        type_(inner, `${pad}  `);
      }
    } else {
      lines.push(`${pad}struct:`);
      for (const [n, sub] of f.struct) field(n, sub, pad);
    }
  };
  for (const [name, f] of columns) field(name, f, " ".repeat(indent));
  return lines;
}
