"""Answering and judging with the network: seeded sampling per candidate, judge distributions."""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from . import vocab as V
from .batch import Encoder, images_tensor
from .model import Vlm, judge_logprobs


def candidate_uniforms(seed: int, key: str, j: int) -> np.ndarray:
    """The uniforms candidate j of prompt `key` draws its tokens with: a stream of its own, so the
    same seed, weights and prompt give the same answer whatever else is in the batch."""
    digest = hashlib.sha256(f"{seed}:{key}:{j}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little")).random(V.ANSWER_LEN)


def pick(logits: torch.Tensor, u: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """One token per row: greedy at temperature 0, else inverse-CDF sampling with the row's uniform (nucleus top_p)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        keep = (sorted_p.cumsum(dim=-1) - sorted_p) < top_p
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    cdf = probs.cumsum(dim=-1)
    idx = (cdf < u.unsqueeze(1) * cdf[:, -1:]).sum(dim=-1)
    return idx.clamp(max=logits.shape[-1] - 1)


@torch.no_grad()
def generate(model: Vlm, enc: Encoder, images, questions, keys, k: int, temperature: float, seed: int, max_tokens: int = V.MAX_ANSWER, top_p: float = 1.0, chunk: int = 1024):
    """k answers per prompt, as strings."""
    model.eval()
    limit = max(0, min(V.MAX_ANSWER, max_tokens))
    feats_all = model.encode(images_tensor(images)) if images else None
    prompts, _ = enc.texts([(q, "") for q in questions])
    rows = [(p, j) for p in range(len(questions)) for j in range(k)]
    out: list[list[str]] = [[] for _ in questions]
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        idx = torch.tensor([p for p, _ in part])
        feats = feats_all[idx]
        text = prompts[idx, : V.ANSWER_AT].clone()
        u = torch.from_numpy(np.stack([candidate_uniforms(seed, keys[p], j) for p, j in part])).float()
        done = torch.zeros(len(part), dtype=torch.bool)
        answer = []
        for step in range(limit + 1):
            logits = model(feats, text)[:, -1].masked_fill(enc.banned, float("-inf"))
            if step == limit:
                tok = torch.full((len(part),), V.EOS, dtype=torch.long)
            else:
                tok = pick(logits, u[:, step], temperature, top_p)
            tok = torch.where(done, torch.full_like(tok, V.PAD), tok)
            answer.append(tok)
            done = done | (tok == V.EOS)
            text = torch.cat([text, tok.unsqueeze(1)], dim=1)
            if bool(done.all()):
                break
        ids = torch.stack(answer, dim=1).tolist()
        for (p, _), row in zip(part, ids):
            out[p].append(enc.vocab.detokenize([t for t in row if t != V.PAD]))
    return out


@torch.no_grad()
def judge(model: Vlm, enc: Encoder, images, questions, answers, temperature: float = 0.25, chunk: int = 1024) -> np.ndarray:
    """[N, 5 criteria, 5 scores]: the model's distribution over the score tokens, sharpened at `temperature` (1: as it is)."""
    model.eval()
    out = []
    for s in range(0, len(questions), chunk):
        tokens, _ = enc.texts(list(zip(questions[s : s + chunk], answers[s : s + chunk])))
        feats = model.encode(images_tensor(images[s : s + chunk]))
        lp = judge_logprobs(model(feats, tokens))
        out.append(torch.softmax(lp / max(temperature, 1e-3), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 5, 5))
