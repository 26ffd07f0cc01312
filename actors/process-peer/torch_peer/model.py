"""The network: a CNN encoder over the 32x32 image and a small pre-norm transformer decoder.

The encoder's three stride-2 convolutions turn the image into a 4x4 grid of tokens, one per 8x8
cell of the tiny world (shapes in the top two rows of cells, one glyph per bottom-row cell);
`kernel` 4 (the shipped weights) lets a token see its neighbours, 2 exactly its own cell.
The decoder is a prefix language model over [question, 16 image tokens, answer, judge tokens]:
attention is bidirectional over the prefix (question and image) and causal after it, so each
image token knows the question from the first layer on ("which cell holds the circle?" is
answered where the cell is). vocab.py has the text layout. Unlike the TypeScript members (a
patchify encoder and an attention GRU reading the image from the question's state), every token
attends to every image token at every layer.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import vocab as V

IMAGE_TOKENS = 16


def _fast():
    """bfloat16 autocast: Debian's torch multiplies float32 matrices with the reference BLAS (~1
    GFLOP/s here), bfloat16 ones with oneDNN, 10-40x faster. Weights, optimiser state and every
    loss stay float32."""
    return torch.autocast("cpu", dtype=torch.bfloat16)


class Vlm(nn.Module):
    def __init__(self, vocab_size: int, d: int = 64, layers: int = 2, heads: int = 4, ff: int = 128, kernel: int = 4):
        super().__init__()
        self.config = {"vocab_size": vocab_size, "d": d, "layers": layers, "heads": heads, "ff": ff, "kernel": kernel}
        pad = (kernel - 2) // 2
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, kernel, 2, pad),
            nn.GELU(),
            nn.Conv2d(16, 32, kernel, 2, pad),
            nn.GELU(),
            nn.Conv2d(32, d, kernel, 2, pad),
        )
        # FiLM: the question's mean word embedding scales and shifts every image token before the
        # transformer, so "is this cell the circle asked about?" is one multiplication away.
        self.film = nn.Linear(d, 2 * d)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.image_pos = nn.Parameter(torch.randn(IMAGE_TOKENS, d) * 0.02)
        self.embed = nn.Embedding(vocab_size, d)
        self.text_pos = nn.Parameter(torch.randn(V.TEXT_LEN, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab_size)
        length = IMAGE_TOKENS + V.TEXT_LEN
        prefix = V.PROMPT_LEN + IMAGE_TOKENS
        allowed = torch.ones(length, length).tril().bool()
        allowed[:prefix, :prefix] = True
        self.register_buffer("attn_mask", torch.zeros(length, length).masked_fill(~allowed, float("-inf")), persistent=False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 32, 32, 3] -> image tokens [B, 16, d]."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        with _fast():
            y = self.encoder(x)
        return y.float().flatten(2).transpose(1, 2) + self.image_pos

    def forward(self, feats: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Image tokens [B, 16, d] and text [B, T] (PROMPT_LEN <= T <= TEXT_LEN) -> logits [B, T, vocab]
        over the text positions; row t predicts text token t + 1 (the image sits between the prompt and the answer)."""
        t, p = tokens.shape[1], V.PROMPT_LEN
        words = self.embed(tokens[:, :p])
        present = (tokens[:, :p] > V.SEP).unsqueeze(-1).float()
        question = (words * present).sum(1) / present.sum(1).clamp(min=1)
        scale, shift = self.film(question).unsqueeze(1).chunk(2, dim=-1)
        feats = feats * (1 + scale) + shift
        text = self.embed(tokens) + self.text_pos[:t]
        x = torch.cat([text[:, :p], feats, text[:, p:]], dim=1)
        pad = tokens == V.PAD
        pad = torch.cat([pad[:, :p], torch.zeros(tokens.shape[0], IMAGE_TOKENS, dtype=torch.bool), pad[:, p:]], dim=1)
        n = IMAGE_TOKENS + t
        with _fast():
            h = self.blocks(x, mask=self.attn_mask[:n, :n], src_key_padding_mask=pad)
            h = torch.cat([h[:, :p], h[:, p + IMAGE_TOKENS :]], dim=1)
            logits = self.head(self.norm(h))
        return logits.float()

    def parameters_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def answer_logprobs(logits: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, banned: torch.Tensor):
    """Summed log-probs of each answer (its tokens and <eos>) and their counts; banned ids are impossible in answers."""
    rows = logits[:, V.ANSWER_AT - 1 : V.ANSWER_AT - 1 + V.ANSWER_LEN].masked_fill(banned, float("-inf"))
    lp = F.log_softmax(rows, dim=-1).gather(-1, tokens[:, V.ANSWER_AT : V.ANSWER_AT + V.ANSWER_LEN].unsqueeze(-1)).squeeze(-1)
    scored = torch.arange(V.ANSWER_LEN).unsqueeze(0) < lengths.unsqueeze(1)
    # Positions after <eos> hold <pad> (banned: -inf), so they are dropped, not multiplied by 0.
    return torch.where(scored, lp, torch.zeros_like(lp)).sum(dim=1), lengths.float()


def judge_logprobs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probs of the five scores per criterion, [B, 5 criteria, 5 scores], read at the criterion tokens."""
    rows = logits[:, V.CRIT_AT - 1 : V.CRIT_AT - 1 + len(V.CRITERIA), V.SCORE0 : V.SCORE0 + 5]
    return F.log_softmax(rows, dim=-1)


def save(model: Vlm, vocab: V.Vocab, path: str, meta: dict | None = None) -> None:
    torch.save({"format": "torch-peer/1", "config": model.config, "vocab": vocab.tokens, "state": model.state_dict(), "meta": meta or {}}, path)


def load(path: str) -> tuple[Vlm, V.Vocab, dict]:
    blob = torch.load(path, map_location="cpu")
    if blob.get("format") != "torch-peer/1":
        raise ValueError(f"{path} is not a torch-peer checkpoint")
    vocab = V.Vocab([])
    vocab.tokens = list(blob["vocab"])
    vocab.index = {t: i for i, t in enumerate(vocab.tokens)}
    model = Vlm(**blob["config"])
    model.load_state_dict(blob["state"])
    return model, vocab, blob.get("meta", {})
