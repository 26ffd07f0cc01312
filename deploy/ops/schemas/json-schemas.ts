/**
 * The protocol's zod schemas (protocol/schemas.ts) as JSON Schema (draft 2020-12), one document
 * per message kind, for clients in other languages. The schemas describe what a decoder accepts
 * (zod's input side: fields with defaults may be left out, unknown fields are dropped), of the
 * value msgpack decodes to. What JSON Schema cannot say is said in words (`x-pop-rules`), and
 * bytes are marked with the `x-msgpack` keyword: a validator that knows it checks them.
 */
import { z } from "zod";
import { CONTROL_EVENTS, PROTOCOL_VERSION, SCHEMAS, VerdictScore, type MessageType } from "../../../protocol/mod.ts";

/** The JSON Schema dialect of every published schema. */
export const JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema";

/** A JSON Schema document (a plain JSON value). */
export type JsonSchema = Record<string, unknown>;

/** What a kind is and the rules its schema cannot express (zod refinements). */
interface KindDoc {
  title: string;
  description: string;
  rules?: string[];
}

const CANDIDATE_ID_RULE = "every candidateId is '<promptId>:<author>:<index>' (index a decimal number) and appears once";

/** One entry per message kind; the compiler refuses a kind without one. */
export const KIND_DOCS: Record<MessageType, KindDoc> = {
  experiment: { title: "Experiment config", description: "An experiment: everything a peer needs to take part (KV pop_state, key <experiment>.config)." },
  prompt: { title: "Prompt", description: "One unlabeled prompt of an iteration, published by the coordinator." },
  candidates: {
    title: "Candidate batch",
    description: "A peer's k candidate answers to one prompt.",
    rules: [`${CANDIDATE_ID_RULE}, with the batch's own author`],
  },
  verdict: {
    title: "Verdict",
    description: "One judge's scores on one prompt's candidates, covering every author it judged together.",
    rules: [
      "authors are sorted (by code unit) and distinct",
      `each score's candidateId names one of the verdict's authors; ${CANDIDATE_ID_RULE}`,
      "every author has at least one score",
    ],
  },
  pair: { title: "Preference pair", description: "A preference pair assembled by voting, published by the coordinator." },
  control: { title: "Control event", description: "Lifecycle events of an experiment; `event` says which (one schema per event under $defs)." },
  evaluation: { title: "Evaluation result", description: "A member's benchmark accuracy after an iteration (iteration 0: before any training)." },
  dead_letter: { title: "Dead letter", description: "A message that could not be processed, kept with the reason and its original bytes." },
  member: { title: "Member", description: "A live process serving a peer, kept fresh by heartbeats (KV pop_members, key <experiment>.<peer>.<instance>)." },
  iteration: { title: "Iteration record", description: "The record of an opened iteration (KV pop_state, key <experiment>.iter.<iteration>)." },
  progress: { title: "Coordinator progress", description: "Where the coordinator is (KV pop_state, key <experiment>.progress)." },
  model: { title: "Model record", description: "The latest weights a peer published (KV pop_state, key <experiment>.model.<peer>)." },
  pool: {
    title: "Prompt pool",
    description: "An unlabeled prompt pool, or a chunked pool's index, or one chunk of it (object store pop_blobs, object pool/<name>[/<chunk>]).",
    rules: ["exactly one of: `prompts` is non-empty, or `chunks` is present (then `prompts` is empty)"],
  },
  lease: {
    title: "Coordinator lease",
    description: "Who leads, with which fencing token, and every hand-over's boundary (KV pop_state, key <experiment>.lease).",
  },
};

/** A zod schema the generator cannot express, and was not told how to (a new z.custom, say). */
export class UnrepresentableSchemaError extends Error {
  override readonly name = "UnrepresentableSchemaError";
}

/** Patches for particular schemas, by identity: rules JSON Schema can say that zod keeps as refinements. */
const PATCHES = new Map<z.ZodType, JsonSchema>([
  [VerdictScore, { oneOf: [{ required: ["likert"] }, { required: ["abstained"] }], "x-pop-rules": ["either likert scores or an abstention reason, not both"] }],
]);

type ZodDef = { type: string; fn?: unknown };

/**
 * Marks what JSON cannot carry as the msgpack type the wire uses. The one binary field of the
 * protocol is a z.custom<Uint8Array> (the dead letter's payload); a custom schema it does not know
 * is an error here rather than a silent `{}` in a published contract.
 */
function override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const schema = ctx.zodSchema as z.ZodType & { _zod: { def: ZodDef } };
  const def = schema._zod.def;
  if (def.type === "custom") {
    if (!isBytesCheck(schema))
      throw new UnrepresentableSchemaError("a z.custom schema other than bytes: teach deploy/ops/schemas/json-schemas.ts its wire form");
    Object.assign(ctx.jsonSchema, { "x-msgpack": "bin", description: "Raw bytes: a msgpack bin (JSON has no bytes type; a JSON view would need base64)." });
  } else if (def.type === "bigint") {
    Object.assign(ctx.jsonSchema, { type: "integer", "x-msgpack": "int64" });
  }
  const patch = PATCHES.get(schema);
  if (patch) Object.assign(ctx.jsonSchema, patch);
}

/** Whether a custom schema is the bytes check (it accepts a Uint8Array and refuses a string). */
function isBytesCheck(schema: z.ZodType): boolean {
  return schema.safeParse(new Uint8Array(1)).success && !schema.safeParse("bytes").success;
}

/** The JSON Schema of one message kind, with its `$id`, title, description and rules. */
export function messageSchema(kind: MessageType): JsonSchema {
  const raw = z.toJSONSchema(SCHEMAS[kind] as z.ZodType, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
    override,
  }) as JsonSchema;
  const { $schema: _dialect, ...body } = raw;
  const doc = KIND_DOCS[kind];
  const head: JsonSchema = {
    $schema: JSON_SCHEMA_DIALECT,
    $id: schemaFileName(kind),
    title: doc.title,
    description: `${doc.description} Protocol version ${PROTOCOL_VERSION}; encoded as msgpack (application/msgpack).`,
  };
  if (doc.rules) head["x-pop-rules"] = doc.rules;
  return kind === "control" ? { ...head, ...controlDefs(body) } : { ...head, ...body };
}

/** The control schema's branches moved under `$defs` by event name, so each event can be referenced alone. */
function controlDefs(body: JsonSchema): JsonSchema {
  const branches = body.oneOf as JsonSchema[] | undefined;
  if (!branches) throw new UnrepresentableSchemaError("the control schema is no longer a union of events");
  const $defs: Record<string, JsonSchema> = {};
  for (const branch of branches) {
    const event = ((branch.properties as Record<string, JsonSchema>).event as JsonSchema).const as string;
    $defs[event] = branch;
  }
  const missing = CONTROL_EVENTS.filter((e) => !$defs[e]);
  if (missing.length) throw new UnrepresentableSchemaError(`control events without a schema branch: ${missing.join(", ")}`);
  const { oneOf: _branches, ...rest } = body;
  return { ...rest, oneOf: CONTROL_EVENTS.map((e) => ({ $ref: `#/$defs/${e}` })), $defs: Object.fromEntries(CONTROL_EVENTS.map((e) => [e, $defs[e]!])) };
}

/** The file a kind's schema is published in, relative to the schemas folder. */
export const schemaFileName = (kind: MessageType) => `${kind}.schema.json`;

/** Every message kind, in the order of protocol/schemas.ts's SCHEMAS. */
export const MESSAGE_KINDS = Object.keys(SCHEMAS) as MessageType[];
