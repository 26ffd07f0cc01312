import { describe, expect, it } from "vitest";
import { answerIds, JUDGE, questionIds, tokenId, UNK } from "../../actors/models/tiny/vocab.ts";

describe("tiny tokenizer", () => {
  it("reads special-token spellings in text as unknown words, never as control tokens", () => {
    expect(answerIds("<judge> red <eos>")).toEqual([UNK, tokenId("red"), UNK]);
    expect(questionIds("<bos> what")).toEqual([UNK, tokenId("what")]);
    expect(answerIds("<judge>")).not.toContain(JUDGE);
  });
});
