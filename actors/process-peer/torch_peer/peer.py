"""The process wire (docs/process-peer.md): hello, then one JSON request a line on stdin, one reply a line on stdout.

Requests are served one at a time, in order. stdout carries only the wire; logs go to stderr
(the actor's log).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch

from . import model as M
from .batch import Encoder
from .png import decode_png, fit
from .sampling import generate, judge
from .vocab import CRITERIA

PROTOCOL = "pop-process/1"
DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "pytorch.pt")


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Peer:
    """The model behind the wire: answers, judges, trains, loads adapters and (with a benchmark file) evaluates."""

    def __init__(self, weights: str, judge_temperature: float = 0.25, bench: str | None = None):
        self.model, self.vocab, self.meta = M.load(weights)
        self.model.eval()
        self.enc = Encoder(self.vocab)
        self.judge_temperature = judge_temperature
        with open(weights, "rb") as f:
            self.version = "torch-peer-" + hashlib.sha256(f.read()).hexdigest()[:16]
        self.bench = bench
        self._bench_items = None
        # Decoded images by their base64 text: a prompt's image comes with every candidate judged.
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._warned_jpeg = False

    def capabilities(self) -> list[str]:
        return ["answer", "judge", "train", "weights"] + (["evaluate"] if self.bench else [])

    def image(self, prompt: dict) -> np.ndarray:
        """The prompt's first image as 32x32 RGB (a JPEG, which this peer cannot decode, or no image: black)."""
        for img in prompt["images"]:
            if img["format"] != "png":
                if not self._warned_jpeg:
                    log("torch peer: JPEG images are not decoded (no PIL); answering from a black image")
                    self._warned_jpeg = True
                continue
            key = img["data"]
            found = self._images.get(key)
            if found is None:
                found = fit(decode_png(base64.b64decode(key)))
                self._images[key] = found
                if len(self._images) > 50_000:
                    self._images.popitem(last=False)
            return found
        return np.zeros((32, 32, 3), dtype=np.uint8)

    def answer(self, p: dict) -> dict:
        prompts = p["prompts"]
        answers = generate(
            self.model,
            self.enc,
            [self.image(q) for q in prompts],
            [q["question"] for q in prompts],
            [q["id"] for q in prompts],
            p["k"],
            p["temperature"],
            p["seed"],
            max_tokens=p.get("max_tokens") or 5,
            top_p=p.get("top_p") or 1.0,
        )
        return {"answers": answers}

    def judge(self, p: dict) -> dict:
        items = p["items"]
        dist = judge(self.model, self.enc, [self.image(i["prompt"]) for i in items], [i["prompt"]["question"] for i in items], [i["answer"] for i in items], self.judge_temperature)
        return {"judgements": [{"distribution": {c: [float(x) for x in d[ci]] for ci, c in enumerate(CRITERIA)}} for d in dist]}

    def train(self, p: dict, rid: int) -> dict:
        from .simpo_train import train

        def progress(done, total, loss, margin):
            send({"type": "progress", "id": rid, "done": done, "total": total, "loss": loss, "margin": margin})

        m = train(self.model, self.enc, p["work_dir"], progress)
        log(f"torch peer trained: {m['pairs']} pairs, {m['steps']} steps, loss {m['loss_first']:.3f} -> {m['loss_last']:.3f}, margin {m['margin_before']:.3f} -> {m['margin_after']:.3f}")
        return {}

    def load(self, p: dict) -> dict:
        from .simpo_train import load_adapter

        load_adapter(self.model, p["adapter_dir"])
        return {}

    def evaluate(self, p: dict) -> dict:
        from .bench import evaluate
        from .data import load_bench

        if self._bench_items is None:
            self._bench_items = load_bench(self.bench)
        return evaluate(self.model, self.enc, self._bench_items)

    def handle(self, request: dict) -> dict:
        method, params = request["method"], request["params"]
        if method == "train":
            return self.train(params, request["id"])
        if method in ("answer", "judge", "load") or (method == "evaluate" and self.bench):
            return getattr(self, method)(params)
        raise ValueError(f"unknown method {method}")


def main(args) -> None:
    torch.set_num_threads(args.threads)
    peer = Peer(args.weights, args.judge_temperature, args.bench)
    send(
        {
            "type": "hello",
            "protocol": PROTOCOL,
            "name": args.name,
            "capabilities": peer.capabilities(),
            "version": peer.version,
            "parameters": peer.model.parameters_count(),
        }
    )
    log(f"torch peer ready: {peer.version}, {peer.model.parameters_count()} parameters, gap {peer.meta.get('gap')}")
    # stdin closing is the actor's request to exit.
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            send({"type": "result", "id": request["id"], "result": peer.handle(request)})
        except Exception as error:  # noqa: BLE001 - every failure is reported on the wire
            log(f"torch peer: {request.get('method')} failed: {type(error).__name__}: {error}")
            send({"type": "error", "id": request["id"], "message": f"{type(error).__name__}: {error}", "retryable": False})
    log("torch peer: stdin closed, exiting")
