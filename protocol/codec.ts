/**
 * The wire codec: msgpack with records off, so every message decodes on its own without shared
 * structure state, and decoding always validates against the schema.
 */
// Not the package's main entry: under Node that one loads msgpackr-extract, the native string
// extractor, which decodes a message's strings as one string and hands out slices of it, so an
// id kept from a decoded message (a voted prompt, a judged prompt) keeps the whole message alive
// and memory grows with the prompts. The JavaScript reader copies each string.
import { Packr } from "msgpackr/pack";
import type { z } from "zod";
import { DecodeError } from "./errors.ts";
import { Message, SCHEMAS, type MessageOf, type MessageType } from "./schemas.ts";
import { PROTOCOL_VERSION } from "./version.ts";

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: "number" });

/** Largest message accepted by the decoder; payloads beyond this belong in the object store. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Encodes a message after validating it, so nothing invalid is ever published. */
export function encode<T extends Message>(message: T): Uint8Array {
  const schema = SCHEMAS[message.type] as z.ZodType;
  const checked = schema.safeParse(message);
  if (!checked.success) throw new DecodeError("invalid", describeIssues(checked.error), { cause: checked.error });
  return packr.pack(checked.data);
}

/** Largest record read from the object store (a prompt pool can be megabytes). */
export const MAX_STORED_BYTES = 256 * 1024 * 1024;

/** Decodes and validates any protocol message. Throws {@link DecodeError} with the reason. */
export function decode(bytes: Uint8Array): Message;
/** Decodes a message that must be of the given type (`maxBytes` raises the size limit for stored objects). */
export function decode<T extends MessageType>(bytes: Uint8Array, type: T, options?: { maxBytes?: number }): MessageOf<T>;
export function decode(bytes: Uint8Array, type?: MessageType, options: { maxBytes?: number } = {}): Message {
  const raw = unpackRaw(bytes, options.maxBytes ?? MAX_MESSAGE_BYTES);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new DecodeError("malformed", [`expected a map at the top level, got ${describe(raw)}`]);
  }
  const v = (raw as Record<string, unknown>).v;
  if (typeof v === "number" && v !== PROTOCOL_VERSION) {
    throw new DecodeError("unsupported_version", [`protocol version ${v}; this build speaks ${PROTOCOL_VERSION}`]);
  }
  const actual = (raw as Record<string, unknown>).type;
  if (type !== undefined && actual !== type) {
    throw new DecodeError("invalid", [`expected a '${type}' message, got ${describe(actual)}`]);
  }
  const schema: z.ZodType = type ? SCHEMAS[type] : Message;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new DecodeError("invalid", describeIssues(parsed.error), { cause: parsed.error });
  return parsed.data as Message;
}

function unpackRaw(bytes: Uint8Array, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError("malformed", ["payload is not bytes"]);
  if (bytes.length === 0) throw new DecodeError("malformed", ["empty payload"]);
  if (bytes.length > maxBytes) {
    throw new DecodeError("malformed", [`payload of ${bytes.length} bytes exceeds ${maxBytes}`]);
  }
  try {
    // unpackMultiple would accept trailing garbage silently; a message must be exactly one value.
    const values: unknown[] = [];
    packr.unpackMultiple(bytes, (value: unknown) => {
      values.push(value);
      return values.length < 2;
    });
    if (values.length !== 1) throw new DecodeError("malformed", ["trailing bytes after the message"]);
    return values[0];
  } catch (error) {
    if (error instanceof DecodeError) throw error;
    throw new DecodeError("malformed", [`not valid msgpack: ${(error as Error).message}`], { cause: error });
  }
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, 10).map((issue) => `${issue.path.length ? issue.path.join(".") : "(message)"}: ${issue.message}`);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `'${value.slice(0, 40)}'`;
  return typeof value;
}
