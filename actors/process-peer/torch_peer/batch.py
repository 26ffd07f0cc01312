"""Tensors of a batch: token layouts, answer lengths and the banned-id mask."""
from __future__ import annotations

import numpy as np
import torch

from . import vocab as V


class Encoder:
    """Turns (question, answer) pairs into the model's tensors with one vocabulary."""

    def __init__(self, vocab: V.Vocab):
        self.vocab = vocab
        self.banned = torch.zeros(len(vocab), dtype=torch.bool)
        self.banned[vocab.banned()] = True

    def texts(self, items) -> tuple[torch.Tensor, torch.Tensor]:
        """items: (question, answer) -> tokens [B, TEXT_LEN], answer lengths [B] (incl. <eos>)."""
        seqs = [self.vocab.sequence(q, a) for q, a in items]
        return torch.tensor([s for s, _ in seqs], dtype=torch.long), torch.tensor([n for _, n in seqs], dtype=torch.long)


def images_tensor(images) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).astype(np.uint8))
