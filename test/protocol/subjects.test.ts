import { describe, expect, it } from "vitest";
import {
  DecodeError,
  encode,
  headersFor,
  messageIdFor,
  parseSubject,
  subjectFor,
  SubjectError,
  subjects,
  verifyEnvelope,
  decode,
  HEADER,
} from "../../protocol/mod.ts";
import { sampleMessages } from "../support/messages.ts";

describe("subjects", () => {
  it("builds and parses every published kind", () => {
    expect(subjects.candidates("e1", 2, "alice")).toBe("pop.e1.cand.2.alice");
    expect(parseSubject("pop.e1.cand.2.alice")).toEqual({ experiment: "e1", kind: "cand", iteration: 2, peer: "alice" });
    expect(parseSubject("pop.e1.verdict.0.bob")).toEqual({ experiment: "e1", kind: "verdict", iteration: 0, peer: "bob" });
    expect(parseSubject("pop.e1.prompt.3")).toEqual({ experiment: "e1", kind: "prompt", iteration: 3 });
    expect(parseSubject("pop.e1.ctl.training_done.carol")).toEqual({ experiment: "e1", kind: "ctl", event: "training_done", peer: "carol" });
    expect(parseSubject("pop.e1.ctl.iteration_opened")).toEqual({ experiment: "e1", kind: "ctl", event: "iteration_opened" });
  });

  it("refuses tokens that would break subject matching", () => {
    expect(() => subjects.candidates("e1", 1, "a.b")).toThrow(SubjectError);
    expect(() => subjects.candidates("e1", 1, "*")).toThrow(SubjectError);
    expect(() => subjects.candidates("e1", -1, "a")).toThrow(SubjectError);
    expect(() => parseSubject("pop.e1.cand.x.alice")).toThrow(/not a number/);
    expect(() => parseSubject("pop.e1.cand.1")).toThrow(/5 tokens/);
    expect(() => parseSubject("other.e1.cand.1.a")).toThrow(/not a PoP subject/);
    expect(() => parseSubject("pop.e1.ctl.nonsense")).toThrow(/unknown control event/);
  });

  it("gives every published message a subject its own parser accepts, readable headers and a stable id", () => {
    for (const m of sampleMessages()) {
      if (m.type === "experiment" || m.type === "member") continue;
      const subject = subjectFor(m);
      expect(() => verifyEnvelope(subject, m)).not.toThrow();
      expect(messageIdFor(m)).toBe(messageIdFor(decode(encode(m))));
      const h = headersFor(m);
      expect(h.get(HEADER.experiment)).toBe("exp1");
      expect(h.get(HEADER.type)).toMatch(new RegExp(`^${m.type}`));
    }
  });

  it("flags a forged identity and a misrouted message", () => {
    const cand = sampleMessages().find((m) => m.type === "candidates")!;
    const forged = () => verifyEnvelope("pop.exp1.cand.1.mallory", cand);
    expect(forged).toThrow(DecodeError);
    expect(forged).toThrow(/published as 'mallory' but the message claims to be from 'alice'/);
    try {
      verifyEnvelope("pop.exp1.cand.2.alice", cand);
    } catch (error) {
      expect((error as DecodeError).reason).toBe("bad_subject");
      return;
    }
    throw new Error("a message on the wrong iteration's subject was accepted");
  });
});
