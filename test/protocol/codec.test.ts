import { makeRng } from "../../actors/random/rng.ts";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decode, DecodeError, PROTOCOL_VERSION, encode, MAX_MESSAGE_BYTES, Message, SCHEMAS, type MessageType } from "../../protocol/mod.ts";
import { sampleMessages, sampleRecords } from "../support/messages.ts";

/** Deterministic PRNG so a failing fuzz case can be replayed. */
const rng = (seed: number) => makeRng(seed).next;

describe("codec", () => {
  const samples = [...sampleMessages(), ...sampleRecords()];

  it("covers every message type", () => {
    const types = new Set(samples.map((m) => m.type));
    expect([...types].sort()).toEqual(Object.keys(SCHEMAS).sort());
  });

  for (const m of samples) {
    const label = m.type === "control" ? `control/${m.event}` : m.type;
    it(`round-trips ${label}`, () => {
      const bytes = encode(m);
      const back = decode(bytes);
      expect(back).toEqual(m);
      expect(decode(bytes, m.type)).toEqual(m);
    });
  }

  it("refuses to encode an invalid message", () => {
    const bad = { ...samples[2], author: "Not A Name" } as Message;
    expect(() => encode(bad)).toThrow(DecodeError);
  });

  it("says what is wrong", () => {
    const err = catchDecode(new TextEncoder().encode("{json}"));
    expect(err.reason).toBe("malformed");
    expect(err.retryable).toBe(false);
    expect(() => decode(encode(samples[3]!), "prompt")).toThrow(/expected a 'prompt' message, got 'verdict'/);
    expect(catchDecode(new Packr({ useRecords: false }).pack([1, 2])).message).toMatch(/expected a map/);
  });

  it("rejects a future protocol version with its own reason", () => {
    const bytes = new Packr({ useRecords: false }).pack({ ...samples[1], v: PROTOCOL_VERSION + 1 });
    const err = catchDecode(bytes);
    expect(err.reason).toBe("unsupported_version");
  });

  it("rejects a likert score out of range and names the field", () => {
    const v = samples[3] as Extract<Message, { type: "verdict" }>;
    const bytes = new Packr({ useRecords: false }).pack({ ...v, scores: [{ candidateId: "x", likert: { ...v.scores[0]!.likert, correctness: 6 } }] });
    const err = catchDecode(bytes);
    expect(err.reason).toBe("invalid");
    expect(err.message).toMatch(/scores\.0\.likert\.correctness/);
  });

  it("carries an abstention, and refuses a score that is both or neither", () => {
    const v = samples[3] as Extract<Message, { type: "verdict" }>;
    const pack = (scores: unknown) => new Packr({ useRecords: false }).pack({ ...v, scores });
    const id = v.scores[0]!.candidateId;
    const ok = decode(pack([{ candidateId: id, abstained: "correctness: no digit" }]), "verdict");
    expect(ok.scores[0]).toEqual({ candidateId: id, abstained: "correctness: no digit" });
    for (const bad of [[{ candidateId: id }], [{ candidateId: id, likert: v.scores[0]!.likert, abstained: "why" }], [{ candidateId: id, abstained: "" }]]) {
      expect(catchDecode(pack(bad)).reason).toBe("invalid");
    }
  });

  it("refuses a verdict that scores another batch's candidate, or one candidate twice", () => {
    const v = samples[3] as Extract<Message, { type: "verdict" }>;
    const pack = (scores: unknown) => new Packr({ useRecords: false }).pack({ ...v, scores });
    const likert = v.scores[0]!.likert;
    expect(catchDecode(pack([{ candidateId: "p-1:mallory:0", likert }])).message).toMatch(
      /not a candidate of prompt p-1 by one of the verdict's authors \(alice\)/,
    );
    expect(catchDecode(pack([{ candidateId: "p-2:alice:0", likert }])).message).toMatch(/not a candidate of prompt p-1/);
    expect(
      catchDecode(
        pack([
          { candidateId: "p-1:alice:0", likert },
          { candidateId: "p-1:alice:0", likert },
        ]),
      ).message,
    ).toMatch(/appears more than once/);
    // One verdict covers several authors, each scored, listed once and sorted.
    const both = new Packr({ useRecords: false }).pack({
      ...v,
      authors: ["alice", "carol"],
      scores: [
        { candidateId: "p-1:alice:0", likert },
        { candidateId: "p-1:carol:0", likert },
      ],
    });
    expect(decode(both, "verdict").authors).toEqual(["alice", "carol"]);
    const packAuthors = (authors: string[]) => new Packr({ useRecords: false }).pack({ ...v, authors, scores: [{ candidateId: "p-1:alice:0", likert }] });
    expect(catchDecode(packAuthors(["alice", "carol"])).message).toMatch(/no scores for author 'carol'/);
    expect(catchDecode(packAuthors(["alice", "alice"])).message).toMatch(/appears more than once/);
    expect(
      catchDecode(
        new Packr({ useRecords: false }).pack({
          ...v,
          authors: ["carol", "alice"],
          scores: [
            { candidateId: "p-1:alice:0", likert },
            { candidateId: "p-1:carol:0", likert },
          ],
        }),
      ).message,
    ).toMatch(/must be sorted/);
    const c = samples.find((m) => m.type === "candidates")!;
    expect(catchDecode(new Packr({ useRecords: false }).pack({ ...c, candidates: [{ candidateId: "other:alice:0", text: "x" }] })).reason).toBe("invalid");
  });

  it("rejects trailing bytes, empty and oversized payloads", () => {
    const good = encode(samples[1]!);
    expect(catchDecode(new Uint8Array([...good, 0x01])).reason).toBe("malformed");
    expect(catchDecode(new Uint8Array()).reason).toBe("malformed");
    expect(catchDecode(new Uint8Array(MAX_MESSAGE_BYTES + 1)).reason).toBe("malformed");
  });

  it("survives 10,000 random byte strings and mutated valid messages", () => {
    const rand = rng(20261127);
    const valid = samples.map((m) => encode(m));
    const counts = { valid: 0, malformed: 0, invalid: 0, unsupported_version: 0 } as Record<string, number>;
    for (let i = 0; i < 10_000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = new Uint8Array(Math.floor(rand() * 200));
        for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rand() * 256);
      } else {
        bytes = valid[i % valid.length]!.slice();
        const flips = 1 + Math.floor(rand() * 4);
        for (let f = 0; f < flips; f++) {
          const op = rand();
          const at = Math.floor(rand() * bytes.length);
          if (op < 0.6) bytes[at] = Math.floor(rand() * 256);
          else if (op < 0.8) bytes = bytes.slice(0, at);
          else bytes = new Uint8Array([...bytes.slice(0, at), Math.floor(rand() * 256), ...bytes.slice(at)]);
        }
      }
      try {
        const m = decode(bytes);
        // Whatever decodes must be a fully valid message.
        expect(Message.safeParse(m).success).toBe(true);
        counts.valid!++;
      } catch (error) {
        if (!(error instanceof DecodeError)) throw new Error(`case ${i}: non-DecodeError ${String(error)}`);
        expect(error.problems.length).toBeGreaterThan(0);
        counts[error.reason] = (counts[error.reason] ?? 0) + 1;
      }
    }
    expect(counts.malformed! + counts.invalid!).toBeGreaterThan(5000);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(10_000);
  });
});

function catchDecode(bytes: Uint8Array, type?: MessageType): DecodeError {
  try {
    if (type) decode(bytes, type);
    else decode(bytes);
  } catch (error) {
    if (error instanceof DecodeError) return error;
    throw error;
  }
  throw new Error("decode unexpectedly succeeded");
}
