"""Test-time measurements: accuracy, NLL, calibration error, FGSM accuracy.

Computed every epoch (FGSM at the chosen epochs) and logged to metrics.csv; the
analysis reports best and final values (the paper's authors report the best).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repflat.base.layers import evaluating
from repflat.base.data import Data
from repflat.base.data.batches import load_batches, row_chunks


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA when enabled; a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model: nn.Module, data: Data, split: str, device: torch.device, *,
            batch_size: int = 1024, amp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Logits (float32) and labels of a whole split, in eval mode."""
    logits, labels = [], []
    with evaluating(model):
        for xb, yb in load_batches(data, split, row_chunks(len(data.labels[split]), batch_size), device):
            with autocast(device, amp):
                logits.append(model(xb).float().cpu())
            labels.append(yb.cpu())
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


def accuracy_and_nll(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Share of rows whose largest logit is the label, and the mean negative
    log-likelihood −(1/n) Σ log softmax(z_i)[y_i] in nats."""
    t = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels)
    return float((t.argmax(1) == y).double().mean()), float(F.cross_entropy(t, y))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE = Σ_b (n_b / n) · |accuracy_b − confidence_b| over `bins` equal-width bins of
    the confidence max_k p_k (Guo et al., "On calibration of modern neural networks",
    ICML 2017). Bins are (lo, hi], the first [0, 1/bins]. NaN if any probability is not
    finite (a diverged model)."""
    if not np.isfinite(probabilities).all():  # a diverged model: say so rather than bin NaNs
        return float("nan")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def fgsm_accuracy(model: nn.Module, data: Data, split: str, epsilon: float,
                  device: torch.device, *, batch_size: int = 512) -> float:
    """Accuracy on x + ε · sign(∇ₓ CE(f(x), y)) (Goodfellow et al. 2015), in eval mode.

    ε is in pixel units of [0, 1] for image data (divided by each channel's std to act on
    normalised inputs, and the result clipped to valid pixels); in input units otherwise.
    """
    correct = 0
    scale = bounds = None
    if data.pixel_std is not None:
        std = torch.tensor(data.pixel_std, device=device)
        mean = torch.tensor(data.pixel_mean, device=device)
        shape = (1, -1) + (1,) * (len(data.input_shape) - 1)
        scale = (1 / std).view(shape)
        bounds = ((0 - mean) / std).view(shape), ((1 - mean) / std).view(shape)
    with evaluating(model):
        for xb, yb in load_batches(data, split, row_chunks(len(data.labels[split]), batch_size), device):
            x = xb.detach().clone().requires_grad_(True)
            grad, = torch.autograd.grad(F.cross_entropy(model(x), yb), x)
            step = epsilon * grad.sign()
            adv = x.detach() + (step * scale if scale is not None else step)
            if bounds is not None:
                adv = torch.maximum(torch.minimum(adv, bounds[1]), bounds[0])
            with torch.no_grad():
                correct += (model(adv).argmax(1) == yb).sum().item()
    return correct / len(data.labels[split])
