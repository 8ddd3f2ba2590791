"""Losses against soft targets, and the infimum each can reach on given targets.

All four are strictly proper: the expected loss at a mixed point is minimised by
predicting the mixed target, which is what Theorem 1 and Corollary 1 need (PAPER.md,
"What the argument needs"). They differ in whether that minimum can be reached with
finite weights:

| kind            | loss per row                                  | infimum per row        | attained? |
|-----------------|-----------------------------------------------|------------------------|-----------|
| cross_entropy   | −Σ_k t_k log softmax(z)_k                      | H(t) = −Σ_k t_k log t_k | no, where t is one-hot |
| bce             | mean_k BCE(softmax(z)_k, t_k) (official code) | mean_k h(t_k)          | no, where t is one-hot |
| brier (`mse`)   | Σ_k (softmax(z)_k − t_k)²                      | 0                      | no, where t is one-hot |
| squared_error   | Σ_k (z_k − t_k)² on raw outputs (the paper's f: H → ℝᴷ) | 0           | yes       |

`mse` is the old name of `brier` (squared error on softmax probabilities) and means
exactly the same; configs that say it keep working.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("cross_entropy", "bce", "brier", "mse", "squared_error")


def soft_target_loss(kind: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean loss of `logits` (n, K) against soft targets (n, K) whose rows sum to 1, in
    float32 or wider (the wider of the inputs' types)."""
    logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    targets = targets.to(logits.dtype)
    if kind == "cross_entropy":
        return F.cross_entropy(logits, targets)
    if kind == "squared_error":
        return (logits - targets).pow(2).sum(dim=1).mean()
    probabilities = torch.softmax(logits, dim=1)
    if kind == "bce":  # the official code: BCELoss(softmax(output), mixed one-hot), mean over n·K
        return F.binary_cross_entropy(probabilities, targets)
    if kind in ("brier", "mse"):
        return (probabilities - targets).pow(2).sum(dim=1).mean()
    raise ValueError(f"soft_target_loss: unknown loss {kind!r}")  # the config's Literal checks it


def _xlogx(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > 0, t * torch.log(t.clamp_min(1e-300)), torch.zeros_like(t))


def loss_infimum(kind: str, targets: torch.Tensor) -> torch.Tensor:
    """The infimum of `soft_target_loss(kind, ·, targets)` over all predictions, one
    prediction per row: the mean over rows of H(t) (cross-entropy), of mean_k h(t_k)
    with h the binary entropy (bce), or 0 (brier, squared_error), in float64.

    Predicting t itself reaches it (in the limit, where t is one-hot), so the excess
    `loss − infimum` is ≥ 0 and is 0 exactly where every prediction equals its target.
    """
    t = targets.double()
    if kind == "cross_entropy":
        return -_xlogx(t).sum(dim=1).mean()
    if kind == "bce":
        return -(_xlogx(t) + _xlogx(1 - t)).mean()
    if kind in ("brier", "mse", "squared_error"):
        return torch.zeros((), dtype=torch.float64)
    raise ValueError(f"loss_infimum: unknown loss {kind!r}")
