/**
 * The process backend's wire (actors/models/process/wire.ts) as JSON Schema (draft 2020-12), one
 * document per message family, so a peer program in any language can check what it reads and
 * writes. These are JSON lines on a program's stdin and stdout, not msgpack on NATS.
 */
import { z } from "zod";
import { PROCESS_PROTOCOL, PROCESS_SCHEMAS } from "../../../actors/models/process/wire.ts";
import { JSON_SCHEMA_DIALECT, type JsonSchema } from "./json-schemas.ts";

/** A published name of the process wire. */
export type ProcessSchemaName = keyof typeof PROCESS_SCHEMAS;

const DOCS: Record<ProcessSchemaName, { title: string; description: string }> = {
  "process-request": {
    title: "Process request",
    description: "A request the actor writes to the peer program's stdin: answer, judge, train, load or evaluate.",
  },
  "process-message": {
    title: "Process message",
    description: "A line the peer program writes to stdout: its hello first, then results, errors and progress of requests by id.",
  },
  "process-result-answer": { title: "Answer result", description: "The `result` of an answer request: k answers per prompt, in prompt order." },
  "process-result-judge": { title: "Judge result", description: "The `result` of a judge request: one judgement per item, in item order." },
  "process-result-train": { title: "Train result", description: "The `result` of a train request (the figures are in the work directory's metrics.json)." },
  "process-result-load": { title: "Load result", description: "The `result` of a load request." },
  "process-result-evaluate": { title: "Evaluate result", description: "The `result` of an evaluate request: accuracy per suite." },
};

/** Every published name of the process wire. */
export const PROCESS_SCHEMA_NAMES = Object.keys(PROCESS_SCHEMAS) as ProcessSchemaName[];

/** The file a process schema is published in, relative to the published folder. */
export const processSchemaFile = (name: ProcessSchemaName) => `process/${name}.schema.json`;

/** The JSON Schema of one process message family. */
export function processSchema(name: ProcessSchemaName): JsonSchema {
  // The writer's side for what the program writes (defaults may be left out), as a decoder accepts it.
  const raw = z.toJSONSchema(PROCESS_SCHEMAS[name] as z.ZodType, { target: "draft-2020-12", io: "input" }) as JsonSchema;
  const { $schema: _dialect, ...body } = raw;
  const doc = DOCS[name];
  return {
    $schema: JSON_SCHEMA_DIALECT,
    $id: `${name}.schema.json`,
    title: doc.title,
    description: `${doc.description} Wire ${PROCESS_PROTOCOL}: one JSON value a line (UTF-8, newline-delimited) on the program's stdin and stdout; see docs/process-peer.md.`,
    ...body,
  };
}
