"""Word-level vocabulary and the fixed token layout of every sequence the model reads.

Layout (text part; 16 image tokens come first, see model.py):

    [<pad>.. <bos> question <sep>]  [answer.. <eos> <pad>..]  [<judge>]  [<c1> .. <c5>]
     PROMPT_LEN = 14, left-padded    ANSWER_LEN = 6            1          one per criterion

Answers always start at the same place, and the same sequence gives an answer's log-probability
(positions before <eos>) and the model's judgement of it (the score-token distribution read at
each criterion token): judging, SimPO and its judge anchor all take one pass.
"""
from __future__ import annotations

CRITERIA = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
SPECIALS = ["<pad>", "<bos>", "<sep>", "<eos>", "<judge>", "<unk>"]
PAD, BOS, SEP, EOS, JUDGE, UNK = range(len(SPECIALS))
CRIT_TOKENS = [f"<{c}>" for c in CRITERIA]
SCORE_TOKENS = [f"<s{i}>" for i in range(1, 6)]
CRIT0 = len(SPECIALS)
SCORE0 = CRIT0 + len(CRIT_TOKENS)

MAX_QUESTION = 12
PROMPT_LEN = MAX_QUESTION + 2
MAX_ANSWER = 5
ANSWER_LEN = MAX_ANSWER + 1
#: Text index of the first answer token, of <judge>, and of the first criterion token.
ANSWER_AT = PROMPT_LEN
JUDGE_AT = ANSWER_AT + ANSWER_LEN
CRIT_AT = JUDGE_AT + 1
TEXT_LEN = CRIT_AT + len(CRITERIA)


def words(text: str) -> list[str]:
    return text.lower().split()


class Vocab:
    """Specials, criterion and score tokens, then the words (sorted: the same data give the same ids)."""

    def __init__(self, word_list):
        fixed = SPECIALS + CRIT_TOKENS + SCORE_TOKENS
        self.tokens = fixed + sorted({w for w in word_list if w not in fixed and not w.startswith("<")})
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def word_id(self, w: str) -> int:
        # A word spelled like a control token is text, never control: unknown.
        return UNK if w.startswith("<") else self.index.get(w, UNK)

    def sequence(self, question: str, answer: str = "") -> tuple[list[int], int]:
        """The full text layout for (question, answer) and the answer's length in tokens including <eos>."""
        q = [self.word_id(w) for w in words(question)[:MAX_QUESTION]]
        prompt = [BOS, *q, SEP]
        a = [self.word_id(w) for w in words(answer)[:MAX_ANSWER]] + [EOS]
        tokens = [PAD] * (PROMPT_LEN - len(prompt)) + prompt + a + [PAD] * (ANSWER_LEN - len(a))
        tokens += [JUDGE] + [CRIT0 + i for i in range(len(CRITERIA))]
        return tokens, len(a)

    def detokenize(self, ids) -> str:
        out = []
        for i in ids:
            if i == EOS:
                break
            out.append(self.tokens[i])
        return " ".join(out)

    #: Ids that an answer may never contain (every special but <eos>).
    def banned(self) -> list[int]:
        return [i for i, t in enumerate(self.tokens) if t.startswith("<") and i != EOS]
