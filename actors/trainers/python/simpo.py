"""The SimPO objective in plain torch: the numerical core of the Python trainer.

SimPO (Meng, Xia, Chen 2024) scores an answer by its *length-averaged* log-probability under the
policy itself, so it needs no reference model:

    r(y | x) = log pi(y | x) / |y|
    L = -log sigmoid(beta * (r(y_w | x) - r(y_l | x)) - gamma)

with an optional CPO-style NLL term on the chosen answers (``sft_weight`` x mean of -r(y_w | x)).
The loss here is the same function as ``simpoObjective`` in actors/models/tiny/model.ts (the tiny
TypeScript model's trainer), term for term, so both trainers optimise the same thing and
test/actors/simpo-parity.test.ts can compare them number by number.

This module imports only torch: it is what the parity test runs on a CPU machine without
transformers, and what simpo_lora.py calls on the GPU.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

#: Label value that Hugging Face models use for "no loss here"; honoured when no mask is given.
IGNORE_INDEX = -100


def sequence_logprobs(
    logits: torch.Tensor,
    labels: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probabilities of the answer tokens of each sequence, and how many there are.

    Args:
        logits: ``[B, T, V]`` next-token logits of a causal LM over the *input* ids: position ``t``
            holds the distribution of token ``t + 1``.
        labels: ``[B, T]`` the input ids themselves (not pre-shifted).
        mask: ``[B, T]``, true/1 where the token at that position belongs to the answer (scored);
            prompt, image and padding positions are 0. ``None``: score every label that is not
            ``IGNORE_INDEX`` (Hugging Face's convention).

    Returns:
        ``(lp, counts)``, both ``[B]`` in the logits' float dtype (float32 at least): ``lp[b]`` is
        ``sum_t log p(labels[b, t] | labels[b, <t])`` over the answer positions, ``counts[b]`` the
        number of those positions (SimPO's ``|y|``).

    Why shifted: a causal LM's logits at position ``t - 1`` predict the token at ``t``, so labels
    and mask drop their first position and logits their last. The first position can never be
    scored (nothing precedes it); answers always follow a prompt, so nothing is lost.

    Why only the masked rows go through log-softmax: for a 7B model the full ``[B, T, V]`` float32
    log-softmax is hundreds of MB per sequence, while answers are a small part of ``T`` (the image
    alone is 576 tokens in LLaVA-1.5). Half-precision logits are upcast first, because summing
    dozens of bf16 log-probs loses the margin SimPO is trying to move.
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"expected logits [B, T, V] and labels [B, T], got {tuple(logits.shape)} and {tuple(labels.shape)}")
    if mask is None:
        mask = labels != IGNORE_INDEX
    elif mask.shape != labels.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must have the labels' shape {tuple(labels.shape)}")

    out_dtype = logits.dtype if logits.dtype in (torch.float32, torch.float64) else torch.float32
    scored = mask[:, 1:].bool()                                   # [B, T-1]: which next tokens count
    targets = labels[:, 1:][scored]                               # [K]
    rows = logits[:, :-1][scored].to(out_dtype)                   # [K, V]: the rows that predict them
    token_lp = F.log_softmax(rows, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [K]

    batch = logits.shape[0]
    # Boolean indexing walks rows in order, so the batch index of each scored token is the row of
    # its mask entry; index_add sums them per sequence and keeps the graph for backprop.
    which = scored.nonzero(as_tuple=True)[0]
    lp = torch.zeros(batch, dtype=out_dtype, device=logits.device).index_add(0, which, token_lp)
    counts = scored.sum(dim=-1).to(out_dtype)
    return lp, counts


def simpo_loss(
    lp: torch.Tensor,
    lengths: torch.Tensor,
    n: int,
    beta: float,
    gamma: float,
    sft_weight: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SimPO loss (+ optional length-normalised NLL on the chosen answers) of ``n`` pairs.

    Args:
        lp: ``[2n]`` summed answer log-probs: the ``n`` chosen answers first, then the ``n``
            rejected ones in the same pair order (``sequence_logprobs`` of such a batch).
        lengths: ``[2n]`` answer token counts ``|y|`` (positive).
        n: number of pairs.
        beta, gamma, sft_weight: settings.json's ``simpo`` fields of the same names (see the
            trainer contract, actors/trainers/contract.ts); gamma is the **absolute** margin.

    Returns:
        ``(loss, margin)``: the scalar loss and ``[n]`` margins ``lp_w/|y_w| - lp_l/|y_l|`` (the
        quantity metrics.json reports as margin_before/margin_after, averaged).

    ``softplus(-z)`` is ``-log sigmoid(z)`` written the way that stays finite for large ``|z|``
    (and the way actors/models/tiny/model.ts writes it, whose loss this mirrors exactly):
        loss = mean softplus(-(beta * margin - gamma)) + sft_weight * mean(-lp_w / |y_w|)
    """
    if lp.dim() != 1 or lp.shape[0] != 2 * n or lengths.shape != lp.shape:
        raise ValueError(f"expected lp and lengths of shape [{2 * n}] (n chosen, then n rejected), got {tuple(lp.shape)} and {tuple(lengths.shape)}")
    avg = lp / lengths
    chosen, rejected = avg[:n], avg[n:]
    margin = chosen - rejected
    loss = F.softplus(-(beta * margin - gamma)).mean()
    if sft_weight:
        loss = loss + sft_weight * (-chosen).mean()
    return loss, margin
