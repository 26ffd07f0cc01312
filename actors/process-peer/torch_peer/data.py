"""Reading a `pop tiny-data` export (items.jsonl + images.u8) and a `pop tiny-bench` benchmark file."""
from __future__ import annotations

import json
import os

import numpy as np

from .png import decode_png, fit


def load_export(directory: str):
    """(rows, images): the export's items and their images as uint8 [N, 32, 32, 3]."""
    with open(os.path.join(directory, "items.jsonl")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    images = np.fromfile(os.path.join(directory, "images.u8"), dtype=np.uint8)
    if images.size != len(rows) * 32 * 32 * 3:
        raise ValueError(f"{directory}: {len(rows)} items but {images.size} image bytes")
    return rows, images.reshape(len(rows), 32, 32, 3)


def load_bench(path: str):
    """A benchmark JSONL with exact answers (actors/evaluation/benchmark-file.ts): [(suite, question, answer, image)]."""
    base = os.path.dirname(os.path.abspath(path))
    items = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            paths = row.get("images") or ([row["image"]] if row.get("image") else [])
            image = np.zeros((32, 32, 3), dtype=np.uint8)
            if paths:
                with open(os.path.join(base, paths[0]), "rb") as g:
                    image = fit(decode_png(g.read()))
            items.append((row.get("suite", "default"), row["question"], str(row["answer"]), image))
    return items
