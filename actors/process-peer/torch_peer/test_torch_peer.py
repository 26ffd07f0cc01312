"""Unit tests of the PyTorch peer (run by test/actors/torch-peer.test.ts):

    cd actors/process-peer && /usr/bin/python3 -m unittest torch_peer.test_torch_peer
"""
from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np
import torch

from . import model as M
from . import vocab as V
from .batch import Encoder
from .png import decode_png
from .sampling import generate, judge
from .simpo_train import train

HERE = os.path.dirname(os.path.abspath(__file__))
WORDS = "what color is the circle ? how many shapes are there red green blue one two three".split()


def encode_png(rgb: np.ndarray, filters) -> bytes:
    """A PNG whose row y uses filter filters[y % len(filters)] (to check every filter's decoding)."""
    h, w, _ = rgb.shape
    raw, prev = b"", np.zeros(w * 3, dtype=np.int64)
    for y in range(h):
        f, line = filters[y % len(filters)], rgb[y].reshape(-1).astype(np.int64)
        left = np.concatenate([np.zeros(3, dtype=np.int64), line[:-3]])
        upleft = np.concatenate([np.zeros(3, dtype=np.int64), prev[:-3]])
        if f == 0:
            pred = np.zeros_like(line)
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        raw += bytes([f]) + ((line - pred) % 256).astype(np.uint8).tobytes()
        prev = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def fresh_model(seed=0):
    torch.manual_seed(seed)
    vocab = V.Vocab(WORDS)
    return M.Vlm(len(vocab), d=32, layers=1, heads=2, ff=64), vocab


def image(seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3)).astype(np.uint8)


class PngTest(unittest.TestCase):
    def test_every_filter_decodes(self):
        rgb = image(1)[:7, :5]
        self.assertTrue(np.array_equal(decode_png(encode_png(rgb, [0, 1, 2, 3, 4])), rgb))


class SamplingTest(unittest.TestCase):
    def test_the_same_seed_gives_the_same_answers_whatever_the_batch(self):
        model, vocab = fresh_model()
        enc = Encoder(vocab)
        q = "how many shapes are there ?"
        a = generate(model, enc, [image(1), image(2)], [q, q], ["p1", "p2"], 3, 1.0, 7)
        b = generate(model, enc, [image(2)], [q], ["p2"], 3, 1.0, 7)
        self.assertEqual(a[1], b[0])
        self.assertEqual(len(a), 2)
        self.assertTrue(all(len(x) == 3 for x in a))
        greedy = generate(model, enc, [image(1)], [q], ["p1"], 2, 0.0, 1)
        self.assertEqual(greedy[0][0], greedy[0][1])

    def test_judge_gives_a_distribution_per_criterion(self):
        model, vocab = fresh_model()
        d = judge(model, Encoder(vocab), [image(1)], ["what color is the circle ?"], ["red"])
        self.assertEqual(d.shape, (1, 5, 5))
        self.assertTrue(np.allclose(d.sum(-1), 1, atol=1e-5))


class SimpoTest(unittest.TestCase):
    def test_a_simpo_run_lowers_the_loss_and_widens_the_margin(self):
        model, vocab = fresh_model()
        with tempfile.TemporaryDirectory() as work:
            os.makedirs(os.path.join(work, "images"))
            os.makedirs(os.path.join(work, "adapter"))
            with open(os.path.join(work, "images", "a.png"), "wb") as f:
                f.write(encode_png(image(3), [1, 4]))
            record = {
                "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "how many shapes are there ?"}]}],
                "chosen": [{"role": "assistant", "content": [{"type": "text", "text": "two"}]}],
                "rejected": [{"role": "assistant", "content": [{"type": "text", "text": "red blue"}]}],
                "images": ["images/a.png"],
                "prompt_id": "p1",
            }
            with open(os.path.join(work, "pairs.jsonl"), "w") as f:
                f.write(json.dumps(record) + "\n")
            settings = {
                "init_adapter": None,
                "pairs": os.path.join(work, "pairs.jsonl"),
                "pair_count": 1,
                "output_dir": os.path.join(work, "adapter"),
                "metrics": os.path.join(work, "metrics.json"),
                "simpo": {"beta": 2.0, "gamma": 1.0, "learning_rate": 1e-2, "epochs": 20, "batch_size": 16, "sft_weight": 1.0, "seed": 0},
            }
            with open(os.path.join(work, "settings.json"), "w") as f:
                json.dump(settings, f)
            steps = []
            m = train(model, Encoder(vocab), work, lambda done, total, loss, margin: steps.append((done, total, loss)))
            self.assertEqual(m["steps"], 20)
            self.assertEqual(steps[-1][:2], (20, 20))
            self.assertLess(m["loss_last"], m["loss_first"])
            self.assertGreater(m["margin_after"], m["margin_before"])
            self.assertTrue(os.path.exists(os.path.join(work, "adapter", "model.pt")))
            with open(settings["metrics"]) as f:
                self.assertEqual(json.load(f)["pairs"], 1)


class WireTest(unittest.TestCase):
    def test_it_speaks_the_process_wire(self):
        model, vocab = fresh_model()
        with tempfile.TemporaryDirectory() as d:
            weights = os.path.join(d, "w.pt")
            M.save(model, vocab, weights)
            proc = subprocess.Popen([sys.executable, HERE, "--weights", weights], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                hello = json.loads(proc.stdout.readline())
                self.assertEqual(hello["type"], "hello")
                self.assertEqual(hello["protocol"], "pop-process/1")
                self.assertEqual(set(hello["capabilities"]), {"answer", "judge", "train", "weights"})
                img = {"format": "png", "width": 32, "height": 32, "data": base64.b64encode(encode_png(image(4), [0, 2])).decode()}
                prompt = {"id": "p1", "question": "what color is the circle ?", "images": [img]}
                proc.stdin.write(json.dumps({"id": 1, "method": "answer", "params": {"prompts": [prompt], "k": 2, "temperature": 0.7, "seed": 3}}) + "\n")
                proc.stdin.write(json.dumps({"id": 2, "method": "judge", "params": {"items": [{"prompt": prompt, "answer": "red"}]}}) + "\n")
                proc.stdin.write(json.dumps({"id": 3, "method": "evaluate", "params": {"iteration": 0, "model_version": "x"}}) + "\n")
                proc.stdin.flush()
                replies = [json.loads(proc.stdout.readline()) for _ in range(3)]
                self.assertEqual([r["id"] for r in replies], [1, 2, 3])
                self.assertEqual(len(replies[0]["result"]["answers"][0]), 2)
                dist = replies[1]["result"]["judgements"][0]["distribution"]
                self.assertEqual(sorted(dist), sorted(V.CRITERIA))
                self.assertAlmostEqual(sum(dist["correctness"]), 1.0, places=4)
                # No benchmark file: evaluate is not among its capabilities, and asking is an error reply.
                self.assertEqual(replies[2]["type"], "error")
            finally:
                proc.stdin.close()
                self.assertEqual(proc.wait(timeout=30), 0)
                proc.stdout.close()
                proc.stderr.close()


class PretrainTest(unittest.TestCase):
    def test_the_recipe_is_a_function_of_its_seed(self):
        from .pretrain import pretrain

        rng = np.random.default_rng(0)
        rows = [
            {"question": "how many shapes are there ?", "answer": w, "suite": s, "judge": [{"answer": "red", "scores": [1, 1, 2, 1, 2]}]}
            for w, s in [("one", "count"), ("red", "colour"), ("two", "count"), ("blue", "colour")]
        ]
        images = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
        quiet = lambda *_: None  # noqa: E731
        recipe = {"steps": 3, "batch": 2, "judge_batch": 2, "lr": 1e-3, "warmup": 1, "seed": 5}
        a, _, _ = pretrain(rows, images, steps=3, seed=5, log=quiet, recipe=recipe)
        b, _, _ = pretrain(rows, images, steps=3, seed=5, log=quiet, recipe=recipe)
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            self.assertTrue(torch.equal(x, y), name)


if __name__ == "__main__":
    unittest.main()
