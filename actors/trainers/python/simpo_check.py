"""Driver for test/actors/simpo-parity.test.ts: runs simpo.py on cases read as JSON from stdin.

Input:  {"simpo": [{"lp": [...], "len": [...], "n": N, "beta": b, "gamma": g, "sft_weight": s}, ...],
         "logprobs": [{"logits": [[[...]]], "labels": [[...]], "mask": [[...]] or null}, ...]}
Output: {"torch": version, "simpo": [{"loss": x, "grad": [...], "margin": [...]}, ...],
         "logprobs": [{"lp": [...], "counts": [...], "grad": [[[...]]]}, ...]}

Everything runs in float64, so the TypeScript side (tfjs, float32) is compared against values that
carry no rounding error of their own. ``grad`` is d loss / d lp for the SimPO cases and
d sum(lp) / d logits for the log-prob cases (which shows the causal shift: only the rows that
predict an answer token get a gradient).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simpo import sequence_logprobs, simpo_loss  # noqa: E402


def run_simpo(case: dict[str, Any]) -> dict[str, Any]:
    lp = torch.tensor(case["lp"], dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor(case["len"], dtype=torch.float64)
    loss, margin = simpo_loss(lp, lengths, int(case["n"]), float(case["beta"]), float(case["gamma"]), float(case.get("sft_weight", 0)))
    loss.backward()
    return {"loss": loss.item(), "grad": lp.grad.tolist(), "margin": margin.detach().tolist()}


def run_logprobs(case: dict[str, Any]) -> dict[str, Any]:
    logits = torch.tensor(case["logits"], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor(case["labels"], dtype=torch.long)
    mask = None if case.get("mask") is None else torch.tensor(case["mask"], dtype=torch.bool)
    lp, counts = sequence_logprobs(logits, labels, mask)
    lp.sum().backward()
    return {"lp": lp.detach().tolist(), "counts": counts.tolist(), "grad": logits.grad.tolist()}


def main() -> None:
    request = json.load(sys.stdin)
    reply = {
        "torch": torch.__version__,
        "simpo": [run_simpo(c) for c in request.get("simpo", [])],
        "logprobs": [run_logprobs(c) for c in request.get("logprobs", [])],
    }
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
