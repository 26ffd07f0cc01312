#!/usr/bin/env python3
"""A minimal peer program for `pop actor --backend process --cmd "python3 minimal_peer.py"`.

Standard library only. It speaks the process wire (docs/process-peer.md): a hello on stdout,
then one JSON request a line on stdin, one JSON reply a line on stdout; logs go to stderr. Its
"model" is a trivially simple but real rule: it decodes each PNG with zlib, names the colours
it sees, and answers and judges from them. Copy this file and replace `Model` with your own.

    python3 minimal_peer.py                 # judges with Likert scores
    python3 minimal_peer.py --distribution  # judges with a distribution over 1..5 per criterion
"""
import base64
import json
import math
import os
import random
import struct
import sys
import time
import zlib

PROTOCOL = "pop-process/1"
CRITERIA = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# Named colours, by their nearest RGB; white and black are background and ink.
PALETTE = {
    "red": (220, 45, 40),
    "green": (45, 200, 70),
    "blue": (50, 90, 235),
    "yellow": (230, 215, 40),
    "purple": (175, 60, 205),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
NOT_OBJECTS = {"white", "black"}


def log(*parts):
    """A line for the actor's log (stderr: stdout is the wire)."""
    print(*parts, file=sys.stderr, flush=True)


# --- images -------------------------------------------------------------------------------


def decode_png(data):
    """8-bit RGB or RGBA (or grey) PNG -> (width, height, list of (r, g, b))."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    at, idat, width, height, ctype = 8, b"", 0, 0, 2
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (0, 2, 6):
                raise ValueError(f"unsupported PNG (bit depth {depth}, colour type {ctype})")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    channels = {0: 1, 2: 3, 6: 4}[ctype]
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    pixels = []
    for line in rows:
        for x in range(width):
            px = line[x * channels : x * channels + channels]
            pixels.append((px[0], px[0], px[0]) if channels == 1 else (px[0], px[1], px[2]))
    return width, height, pixels


def colour_counts(image):
    """Pixels per named colour of one wire image (a JPEG, which the standard library cannot decode, counts nothing)."""
    counts = {}
    if image["format"] != "png":
        return counts
    _, _, pixels = decode_png(base64.b64decode(image["data"]))
    for r, g, b in pixels:
        name = min(PALETTE, key=lambda n: (PALETTE[n][0] - r) ** 2 + (PALETTE[n][1] - g) ** 2 + (PALETTE[n][2] - b) ** 2)
        counts[name] = counts.get(name, 0) + 1
    return counts


# --- the model ----------------------------------------------------------------------------


class Model:
    """Answers from the colours it sees; `memory` (prompt id -> chosen answer) is what training taught it."""

    def __init__(self):
        self.memory = {}

    def options(self, prompt):
        """Possible answers to a prompt, likeliest first."""
        counts = {}
        for image in prompt["images"]:
            for name, n in colour_counts(image).items():
                counts[name] = counts.get(name, 0) + n
        objects = sorted((n for n in counts if n not in NOT_OBJECTS), key=lambda n: -counts[n])
        q = prompt["question"].lower()
        if q.startswith("how many"):
            n = len(objects)
            ranked = [NUMBERS[min(n, 9)]] + [NUMBERS[m] for m in (n + 1, n - 1) if 0 <= m <= 9]
        elif q.startswith("is there text"):
            ranked = ["yes", "no"] if counts.get("black", 0) else ["no", "yes"]
        else:
            ranked = objects or ["white"]
        learned = self.memory.get(prompt["id"])
        return [learned] + [r for r in ranked if r != learned] if learned else ranked

    def answer(self, prompt, k, temperature, seed):
        ranked = self.options(prompt)
        if temperature <= 0:
            return [ranked[0]] * k
        weights = [math.exp(-rank / temperature) for rank in range(len(ranked))]
        out = []
        for j in range(k):
            rng = random.Random(f"{seed}:{prompt['id']}:{j}")
            out.append(rng.choices(ranked, weights)[0])
        return out

    def scores(self, prompt, answer):
        """1..5 per criterion: right by its own reading, short, and made of words."""
        best = self.options(prompt)[0]
        words = answer.lower().split()
        correct = 5 if words == [best] else 3 if best in words else 1
        return {
            "helpfulness": max(1, correct - (1 if len(words) > 3 else 0)),
            "correctness": correct,
            "coherence": 5 if words and all(w.isalpha() for w in words) else 2,
            "complexity": 1 + min(4, len(words) // 3),
            "verbosity": max(1, 5 - min(4, abs(len(words) - 1))),
        }

    def train(self, work_dir, progress):
        """Trainer contract: learns each prompt's chosen answer; writes the adapter and metrics.json."""
        t0 = time.time()
        with open(os.path.join(work_dir, "settings.json")) as f:
            settings = json.load(f)
        if settings["init_adapter"]:
            self.load(settings["init_adapter"])
        with open(settings["pairs"]) as f:
            pairs = [json.loads(line) for line in f if line.strip()]
        text = lambda turns: "".join(part.get("text", "") for turn in turns for part in turn["content"] if part.get("type") == "text")
        before = sum(1 for p in pairs if self.memory.get(p["prompt_id"]) == text(p["chosen"]))
        for i, p in enumerate(pairs):
            self.memory[p["prompt_id"]] = text(p["chosen"])
            progress(i + 1, len(pairs), float(len(pairs) - i - 1), 1.0)
        with open(os.path.join(settings["output_dir"], "memory.json"), "w") as f:
            json.dump(self.memory, f, sort_keys=True)
        n = max(1, len(pairs))
        metrics = {
            "steps": len(pairs),
            "pairs": len(pairs),
            "loss_first": float(len(pairs)),
            "loss_last": 0.0,
            "margin_before": before / n,
            "margin_after": 1.0 if pairs else 0.0,
            "seconds": time.time() - t0,
        }
        with open(settings["metrics"], "w") as f:
            json.dump(metrics, f)

    def load(self, adapter_dir):
        with open(os.path.join(adapter_dir, "memory.json")) as f:
            self.memory = json.load(f)


def distribution(score):
    """A peaked distribution over 1..5 around an integer score."""
    p = [0.05] * 5
    p[score - 1] = 0.8
    return p


# --- the wire -----------------------------------------------------------------------------


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def handle(model, request, as_distribution):
    method, params, rid = request["method"], request["params"], request["id"]
    if method == "answer":
        answers = [model.answer(p, params["k"], params["temperature"], params["seed"]) for p in params["prompts"]]
        return {"answers": answers}
    if method == "judge":
        judgements = []
        for item in params["items"]:
            s = model.scores(item["prompt"], item["answer"])
            judgements.append({"distribution": {c: distribution(s[c]) for c in CRITERIA}} if as_distribution else {"likert": s})
        return {"judgements": judgements}
    if method == "train":
        progress = lambda done, total, loss, margin: send({"type": "progress", "id": rid, "done": done, "total": total, "loss": loss, "margin": margin})
        model.train(params["work_dir"], progress)
        return {}
    if method == "load":
        model.load(params["adapter_dir"])
        return {}
    raise ValueError(f"unknown method {method}")


def main():
    as_distribution = "--distribution" in sys.argv[1:]
    model = Model()
    send({"type": "hello", "protocol": PROTOCOL, "name": "minimal-peer", "capabilities": ["answer", "judge", "train", "weights"], "version": "minimal-1"})
    log("minimal peer ready")
    # stdin closing is the actor's request to exit.
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            send({"type": "result", "id": request["id"], "result": handle(model, request, as_distribution)})
        except Exception as error:  # noqa: BLE001 - every failure is reported on the wire
            send({"type": "error", "id": request["id"], "message": f"{type(error).__name__}: {error}", "retryable": False})
    log("minimal peer: stdin closed, exiting")


if __name__ == "__main__":
    main()
