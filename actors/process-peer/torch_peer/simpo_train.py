"""One iteration's training under the trainer contract (actors/trainers/contract.ts): SimPO + NLL
on the pairs of a work directory, with a judge anchor, the adapter written to output_dir.

The loss is the project's SimPO objective (actors/trainers/python/simpo.py, the same function as
the TypeScript members' `simpoObjective`) on length-averaged answer log-probs, plus, as the
TypeScript members do, `ANCHOR_WEIGHT` x the cross-entropy between the model's judge
distributions on the pairs' answers before the run and during it (learning without forgetting:
training on answers alone lets the judge drift). Adam, fresh per run; the vision encoder stays
fixed (the TypeScript members keep their shared vision tower fixed too).
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

from .batch import Encoder
from .model import Vlm, answer_logprobs, judge_logprobs
from .png import decode_png, fit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "trainers", "python"))
from simpo import simpo_loss  # noqa: E402

ANCHOR_WEIGHT = 1.0
#: Keep the CNN encoder fixed during SimPO (as the TypeScript members keep their vision tower).
FREEZE_ENCODER = True
ADAPTER_FILE = "model.pt"


def _text(turns) -> str:
    return "".join(part.get("text", "") for turn in turns for part in turn["content"] if part.get("type") == "text")


def read_pairs(work_dir: str, pairs_file: str):
    """[(image, question, chosen, rejected)] from pairs.jsonl (TRL's conversational vision records)."""
    out, cache = [], {}
    with open(pairs_file) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            image = np.zeros((32, 32, 3), dtype=np.uint8)
            if r.get("images"):
                path = os.path.join(work_dir, r["images"][0])
                if path not in cache:
                    with open(path, "rb") as g:
                        cache[path] = fit(decode_png(g.read()))
                image = cache[path]
            out.append((image, _text(r["prompt"]), _text(r["chosen"]), _text(r["rejected"])))
    return out


def _pass(model: Vlm, enc: Encoder, feats: torch.Tensor, batch):
    """Answer log-probs, lengths and judge log-probs of the chosen answers then the rejected ones, in one forward."""
    tokens, lengths = enc.texts([(q, c) for _, q, c, _ in batch] + [(q, r) for _, q, _, r in batch])
    logits = model(torch.cat([feats, feats]), tokens)
    lp, counts = answer_logprobs(logits, tokens, lengths, enc.banned)
    return lp, counts, judge_logprobs(logits)


def _margin(model, enc, feats, pairs) -> tuple[float, torch.Tensor]:
    """Mean chosen-minus-rejected margin of the length-averaged log-probs, and the judge distributions (the anchor's targets)."""
    with torch.no_grad():
        margins, judges = [], []
        for s in range(0, len(pairs), 256):
            lp, counts, jl = _pass(model, enc, feats[s : s + 256], pairs[s : s + 256])
            n = len(pairs[s : s + 256])
            avg = lp / counts
            margins.append(avg[:n] - avg[n:])
            judges.append(torch.stack([jl[:n].exp(), jl[n:].exp()]))
        return float(torch.cat(margins).mean()), torch.cat(judges, dim=1)


def train(model: Vlm, enc: Encoder, work_dir: str, progress=lambda done, total, loss, margin: None) -> dict:
    """Trains the model in place on the work directory's pairs; writes the adapter and metrics.json; returns the metrics."""
    t0 = time.time()
    with open(os.path.join(work_dir, "settings.json")) as f:
        settings = json.load(f)
    if settings.get("init_adapter"):
        load_adapter(model, settings["init_adapter"])
    simpo = settings["simpo"]
    pairs = read_pairs(work_dir, settings["pairs"])
    torch.manual_seed(simpo.get("seed", 0))
    rng = np.random.default_rng(simpo.get("seed", 0))
    images = torch.from_numpy(np.stack([p[0] for p in pairs])) if pairs else None
    with torch.no_grad():
        feats = model.encode(images) if pairs else None
    margin_before, anchor = _margin(model, enc, feats, pairs) if pairs else (0.0, None)
    frozen = lambda name: FREEZE_ENCODER and (name.startswith("encoder.") or name == "image_pos")  # noqa: E731
    params = [p for name, p in model.named_parameters() if not frozen(name)]
    opt = torch.optim.Adam(params, lr=simpo["learning_rate"])
    batch = max(1, int(simpo["batch_size"]))
    total = int(simpo["epochs"]) * ((len(pairs) + batch - 1) // batch)
    steps, loss_first, loss_last = 0, 0.0, 0.0
    model.train()
    for _ in range(int(simpo["epochs"]) if pairs else 0):
        order = rng.permutation(len(pairs))
        for s in range(0, len(order), batch):
            idx = torch.from_numpy(order[s : s + batch])
            b = [pairs[i] for i in idx.tolist()]
            lp, counts, jl = _pass(model, enc, feats[idx] if FREEZE_ENCODER else model.encode(images[idx]), b)
            loss, margin = simpo_loss(lp, counts, len(b), simpo["beta"], simpo["gamma"], simpo.get("sft_weight", 0.0))
            if ANCHOR_WEIGHT:
                target = torch.cat([anchor[0][idx], anchor[1][idx]])
                loss = loss + ANCHOR_WEIGHT * -(target * jl).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            loss_last = float(loss)
            loss_first = loss_first if steps > 1 else loss_last
            progress(steps, total, loss_last, float(margin.mean()))
    model.eval()
    if pairs and not FREEZE_ENCODER:
        with torch.no_grad():
            feats = model.encode(images)
    margin_after = _margin(model, enc, feats, pairs)[0] if pairs else 0.0
    torch.save(model.state_dict(), os.path.join(settings["output_dir"], ADAPTER_FILE))
    metrics = {
        "steps": steps,
        "pairs": len(pairs),
        "loss_first": loss_first,
        "loss_last": loss_last,
        "margin_before": margin_before,
        "margin_after": margin_after,
        "seconds": time.time() - t0,
    }
    with open(settings["metrics"], "w") as f:
        json.dump(metrics, f)
    return metrics


def load_adapter(model: Vlm, adapter_dir: str) -> None:
    model.load_state_dict(torch.load(os.path.join(adapter_dir, ADAPTER_FILE), map_location="cpu"))
