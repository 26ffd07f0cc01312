"""Accuracy per suite on a benchmark file: greedy answers, exact match after normalisation (as the actor's --bench scores)."""
from __future__ import annotations

import re

from .sampling import generate


def normalise(text: str) -> str:
    """Case, runs of whitespace, surrounding quotes and trailing .!,;: do not matter."""
    t = " ".join(text.strip().lower().split())
    t = t.strip("\"'`")
    return re.sub(r"[.!,;:]+$", "", t).strip()


def evaluate(model, enc, items, chunk: int = 256) -> dict:
    """items: [(suite, question, answer, image)] -> {"suites": {suite: accuracy}, "average", "items"}."""
    right: dict[str, int] = {}
    total: dict[str, int] = {}
    for s in range(0, len(items), chunk):
        part = items[s : s + chunk]
        answers = generate(model, enc, [it[3] for it in part], [it[1] for it in part], [f"bench-{s + i}" for i in range(len(part))], 1, 0.0, 0)
        for (suite, _, truth, _), (a,) in zip(part, answers):
            total[suite] = total.get(suite, 0) + 1
            right[suite] = right.get(suite, 0) + (normalise(a) == normalise(truth))
    suites = {k: right[k] / total[k] for k in total}
    return {"suites": suites, "average": sum(suites.values()) / max(1, len(suites)), "items": len(items)}
