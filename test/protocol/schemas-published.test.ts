/**
 * The published contract (protocol/published/: JSON Schemas and the AsyncAPI document) is
 * current, parses as AsyncAPI 3 without errors, and accepts what the protocol's own codec puts on
 * the wire, as a client in another language would see it: the raw msgpack value, unvalidated by zod.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Parser, fromFile } from "@asyncapi/parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import { Unpackr } from "msgpackr/unpack";
import { describe, expect, it } from "vitest";
import { drift, PUBLISHED_DIR } from "../../deploy/ops/schemas/generate.ts";
import { schemaFileName } from "../../deploy/ops/schemas/json-schemas.ts";
import { encode, type Message } from "../../protocol/mod.ts";
import { sampleMessages, sampleRecords, verdict } from "../support/messages.ts";

/** What a client sees: the msgpack value as decoded, bytes as bytes. */
const raw = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
  // The schemas' own keywords: bytes are checked as bytes; the rest are documentation.
  ajv.addKeyword({
    keyword: "x-msgpack",
    schemaType: "string",
    validate: (kind: string, data: unknown) => (kind === "bin" ? data instanceof Uint8Array : Number.isInteger(data)),
  });
  ajv.addKeyword({ keyword: "x-pop-rules", schemaType: "array" });
  return (m: Message) => {
    const schema = JSON.parse(readFileSync(join(PUBLISHED_DIR, "schemas", schemaFileName(m.type)), "utf8"));
    const validate = ajv.getSchema(schema.$id) ?? ajv.compile(schema);
    const ok = validate(raw.unpack(encode(m)));
    return ok ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  };
}

describe("the published contract", () => {
  it("is what npm run schemas generates (no drift)", () => {
    expect(drift(), "run npm run schemas and commit protocol/published/").toEqual([]);
  });

  it("parses as AsyncAPI with no error-severity diagnostic", async () => {
    const parser = new Parser();
    const { document, diagnostics } = await fromFile(parser, join(PUBLISHED_DIR, "asyncapi.json")).parse();
    const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.code} at ${d.path.join(".")}: ${d.message}`);
    expect(errors).toEqual([]);
    expect(document).toBeDefined();
    // Every payload reference resolved to its schema file.
    const payloads = document!
      .messages()
      .all()
      .map((m) => m.payload()?.json() as { schema?: Record<string, unknown> } | undefined);
    expect(payloads.filter((p) => p?.schema && (p.schema.$ref !== undefined || p.schema.properties === undefined))).toEqual([]);
    expect(document!.operations().all().length).toBeGreaterThan(20);
  }, 60_000);

  it("accepts every encoded message and record of the protocol's own codec", () => {
    const check = validator();
    for (const m of [...sampleMessages(), ...sampleRecords()]) expect(check(m), `${m.type}`).toEqual([]);
  });

  it("refuses what the protocol refuses where JSON Schema can say it", () => {
    const check = validator();
    const good = verdict();
    // Built past the encoder's validation, as a foreign client might send it.
    const bad = { ...good, judge: "Not A Name", scores: [{ candidateId: good.scores[0]!.candidateId, likert: good.scores[0]!.likert, abstained: "both" }] };
    const schema = JSON.parse(readFileSync(join(PUBLISHED_DIR, "schemas", schemaFileName("verdict")), "utf8"));
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    expect(ajv.validate(schema, bad)).toBe(false);
    expect(ajv.errors!.map((e) => e.instancePath)).toEqual(expect.arrayContaining(["/judge", "/scores/0"]));
    expect(check(good)).toEqual([]);
  });
});
