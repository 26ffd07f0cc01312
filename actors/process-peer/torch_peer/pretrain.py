"""The recipe of the shipped weights: cross-entropy on the tiny world's answers and judge labels, one family missing.

    npm run pop -- tiny-data --out /tmp/tiny-data --items 24000 --seed 1
    /usr/bin/python3 actors/process-peer/torch_peer pretrain --data /tmp/tiny-data --out weights/pytorch.pt

Like each shipped TypeScript member, this member has a gap: counting (`GAP`), which the
TypeScript members ocrdumb and lostspace answer at 0.97-0.98. It sees 1% of the counting
answers and 5% of the counting judge examples, so it starts near chance there and can learn
counting only from its peers' answers. Everything is a function of the seed and the export
(single-threaded torch on CPU).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import vocab as V
from .batch import Encoder
from .model import Vlm, answer_logprobs, judge_logprobs, save

GAP = "count"
GAP_ANSWER_KEEP = 0.01
GAP_JUDGE_KEEP = 0.05
RECIPE = {"steps": 1500, "batch": 32, "judge_batch": 32, "lr": 3e-3, "warmup": 100, "seed": 30, "layers": 2, "kernel": 4}


def build_vocab(rows) -> V.Vocab:
    found = set()
    for r in rows:
        found.update(V.words(r["question"]))
        found.update(V.words(r["answer"]))
        for j in r["judge"]:
            found.update(V.words(j["answer"]))
    return V.Vocab(found)


def pretrain(rows, images, steps=RECIPE["steps"], seed=RECIPE["seed"], log=print, recipe=RECIPE, every=None):
    """A fresh model trained by the recipe; returns (model, vocab, meta)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vocab = build_vocab(rows)
    enc = Encoder(vocab)
    model = Vlm(len(vocab), layers=recipe.get("layers", 2), kernel=recipe.get("kernel", 4))
    gap = np.array([r["suite"] == GAP for r in rows])
    keep_answer = ~gap | (rng.random(len(rows)) < GAP_ANSWER_KEEP)
    keep_judge = ~gap | (rng.random(len(rows)) < GAP_JUDGE_KEEP)
    answer_pool = np.flatnonzero(keep_answer)
    judge_pool = np.array([(i, j) for i in np.flatnonzero(keep_judge) for j in range(len(rows[i]["judge"]))])
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / recipe["warmup"]) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    )
    t0 = time.time()
    model.train()
    for step in range(steps):
        a = answer_pool[rng.integers(0, len(answer_pool), recipe["batch"])]
        jb = judge_pool[rng.integers(0, len(judge_pool), recipe["judge_batch"])]
        items = [(rows[i]["question"], rows[i]["answer"]) for i in a] + [(rows[i]["question"], rows[i]["judge"][j]["answer"]) for i, j in jb]
        tokens, lengths = enc.texts(items)
        idx = np.concatenate([a, jb[:, 0]])
        logits = model(model.encode(torch.from_numpy(images[idx])), tokens)
        n = len(a)
        lp, counts = answer_logprobs(logits[:n], tokens[:n], lengths[:n], enc.banned)
        answer_loss = -lp.sum() / counts.sum()
        labels = torch.tensor([rows[i]["judge"][j]["scores"] for i, j in jb], dtype=torch.long) - 1
        judge_loss = F.nll_loss(judge_logprobs(logits[n:]).reshape(-1, 5), labels.reshape(-1))
        loss = answer_loss + judge_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 250 == 0 or step == 0:
            log(f"step {step + 1}/{steps} answer {answer_loss.item():.3f} judge {judge_loss.item():.3f} ({time.time() - t0:.0f} s)")
        if every and (step + 1) % every[0] == 0 and step + 1 < steps:
            every[1](model, enc)
            model.train()
    meta = {"recipe": dict(recipe, steps=steps, seed=seed), "gap": GAP, "gap_answer_keep": GAP_ANSWER_KEEP, "gap_judge_keep": GAP_JUDGE_KEEP, "items": len(rows)}
    # The time goes to the log, not into the file: the same seed and export give the same bytes.
    log(f"trained in {time.time() - t0:.1f} s")
    return model, vocab, meta


def main(args) -> None:
    from .data import load_bench, load_export
    from .bench import evaluate

    torch.set_num_threads(args.threads)
    rows, images = load_export(args.data)
    bench = load_bench(args.bench) if args.bench else None

    def score(model, enc):
        r = evaluate(model, enc, bench)
        print("bench", {k: round(v, 3) for k, v in r["suites"].items()}, "average", round(r["average"], 3), flush=True)

    every = (args.eval_every, score) if bench and args.eval_every else None
    model, vocab, meta = pretrain(rows, images, steps=args.steps, seed=args.seed, log=lambda m: print(m, flush=True), every=every)
    if args.bench:
        result = evaluate(model, Encoder(vocab), bench)
        meta["bench"] = {k: round(v, 3) for k, v in result["suites"].items()}
        print("bench", meta["bench"], "average", round(result["average"], 3), flush=True)
    save(model, vocab, args.out, meta)
    print(f"wrote {args.out} ({model.parameters_count()} parameters)", flush=True)
