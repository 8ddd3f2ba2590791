"""Models by config name. Every model exposes its layers by module name."""
from __future__ import annotations

import math

import torch
from torch import nn

from repflat.config import Cnn1dModel, GruModel, MLPModel, ModelConfig, ResNetModel, TargetModel, TorchvisionModel
from repflat.errors import unknown
from repflat.training.models.mlp import MLP
from repflat.training.models.mnist1d import Cnn1d, Gru
from repflat.training.models.resnets import PreActResNet, WideResNet


def _make(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    if isinstance(cfg, MLPModel):
        return MLP(math.prod(input_shape), n_classes, cfg.widths, cfg.bottleneck,
                   cfg.widths_after, activation=cfg.activation, dropout=cfg.dropout,
                   batch_norm=cfg.batch_norm)
    if isinstance(cfg, ResNetModel):
        channels = input_shape[0]
        if cfg.name == "wrn28_10":
            return WideResNet(28, 10, n_classes, channels, cfg.stem_stride, cfg.dropout)
        blocks = {"preactresnet18": (2, 2, 2, 2), "preactresnet34": (3, 4, 6, 3)}[cfg.name]
        return PreActResNet(blocks, n_classes, channels, cfg.stem_stride)
    if isinstance(cfg, Cnn1dModel):  # sequences: every input value is one position
        return Cnn1d(math.prod(input_shape), n_classes, cfg.channels, cfg.dropout)
    if isinstance(cfg, GruModel):
        return Gru(math.prod(input_shape), n_classes, cfg.hidden, cfg.bidirectional)
    if isinstance(cfg, TorchvisionModel):
        import torchvision  # here, not at the top: every command would pay (benchmarks/import_costs.py)

        names = sorted(torchvision.models.list_models(module=torchvision.models))
        if cfg.arch not in names:
            raise unknown("model.arch", cfg.arch, names)
        model = torchvision.models.get_model(cfg.arch, weights=None, num_classes=n_classes)
        model.hidden_layers = cfg.hidden_layers
        return model
    if isinstance(cfg, TargetModel):  # the user's own class: imports its module
        from repflat.training.models.target import build_target

        return build_target(cfg, input_shape, n_classes)
    raise TypeError(f"unknown model config {cfg!r}")  # pragma: no cover - configs are closed


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int, *,
                seed: int) -> nn.Module:
    """Build and initialise a model; `seed` alone decides its initial weights.

    torch's layer initialisers draw from the global generator, so the build runs inside
    `fork_rng` with that generator seeded: the weights depend on `seed` only and the
    caller's global random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _make(cfg, input_shape, n_classes)
