"""Models by config name. Every model exposes its layers by module name."""
from __future__ import annotations

import math

import torch
from torch import nn

from repflat.config import ModelConfig
from repflat.models.mlp import MLP


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int, *,
                seed: int) -> nn.Module:
    """Build and initialise a model; `seed` alone decides its initial weights.

    torch's layer initialisers draw from the global generator, so the build runs inside
    `fork_rng` with that generator seeded: the weights depend on `seed` only and the
    caller's global random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(math.prod(input_shape), n_classes, cfg.widths, cfg.bottleneck,
                   cfg.widths_after, activation=cfg.activation, dropout=cfg.dropout,
                   batch_norm=cfg.batch_norm)
