"""Mixing strategies: callable objects the training loop calls, one per batch.

`mixer(model, x, targets) -> (logits, mixed_targets)`. ERM is `NoMixing`; input mixup
and manifold mixup are one `Mixup` with different eligible layers (input mixup is
manifold mixup whose only eligible layer is `input`). The model's forward is untouched:
the mix is applied by a forward hook on the chosen layer for that one pass.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.special import betaincinv
from torch import nn

from repflat.config import MixingConfig
from repflat.base.layers import default_layers, replacing
from repflat.base.naming import check_layers
from repflat.rundir.names import INPUT, LAMBDA_STD, MEAN_LAMBDA, MIXES


@dataclass(frozen=True)
class MixPlan:
    """One batch's draw: mix `layer` with weight `lam` against the batch permuted by `index`."""

    layer: str
    lam: float
    index: torch.Tensor

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """λ·t + (1 − λ)·t[index]; exactly `t` when λ = 1."""
        # index_select + add(alpha=) is the cheapest form forward and backward (benchmarks/).
        return torch.add(t.mul(self.lam), t.index_select(0, self.index), alpha=1.0 - self.lam)



class NoMixing:
    """ERM: the batch and its one-hot targets as they are."""

    def __call__(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor):
        return model(x), targets

    def take_tally(self) -> dict:
        """Nothing is mixed: no columns."""
        return {}


class Mixup:
    """Manifold mixup over `layers` (input mixup when `layers == ("input",)`).

    Per batch, from `generator` alone: a layer k drawn uniformly from `layers`,
    λ ~ Beta(α, α) (by inverting the Beta CDF at a uniform draw, since torch's Beta
    sampler takes no generator) and a permutation π of the batch. The output h_k of
    layer k becomes λ·h_k + (1 − λ)·h_k[π] and the soft targets λ·y + (1 − λ)·y[π];
    gradients flow through every layer. Any batch size works, odd ones too.
    """

    def __init__(self, layers: Sequence[str], alpha: float, generator: torch.Generator):
        if not layers:
            raise ValueError("Mixup needs at least one eligible layer")
        self.layers, self.alpha, self.generator = tuple(layers), float(alpha), generator
        self._counts = dict.fromkeys(self.layers, 0)
        self._lambda_sum = self._lambda_squares = 0.0

    def take_tally(self) -> dict:
        """What was mixed since the last call, as metrics.csv columns, and start again:
        batches mixed at each eligible layer (`mixes_<layer>`), the mean λ drawn and its
        standard deviation (which, unlike the mean, depends on α), so a run shows that
        mixing happened where and as the config says."""
        n = sum(self._counts.values())
        row = {f"{MIXES}{layer}": count for layer, count in self._counts.items()}
        mean = self._lambda_sum / n if n else 0.0
        row[MEAN_LAMBDA] = mean if n else ""
        row[LAMBDA_STD] = math.sqrt(max(self._lambda_squares / n - mean * mean, 0.0)) if n else ""
        self._counts = dict.fromkeys(self.layers, 0)
        self._lambda_sum = self._lambda_squares = 0.0
        return row

    def draw(self, batch_size: int, device: torch.device | str = "cpu") -> MixPlan:
        # One uniform pair gives the layer and λ: u₀ picks the layer, λ = F⁻¹(u₁) with F
        # the Beta(α, α) CDF.
        u = torch.rand(2, generator=self.generator, dtype=torch.float64).tolist()
        layer = self.layers[min(int(u[0] * len(self.layers)), len(self.layers) - 1)]
        lam = float(betaincinv(self.alpha, self.alpha, u[1]))
        index = torch.randperm(batch_size, generator=self.generator).to(device)
        return MixPlan(layer, lam, index)

    def forward(self, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, MixPlan]:
        """The model's logits on `x` mixed at a drawn layer, and the draw (whose call on
        the targets mixes them the same way), counted in the tally."""
        plan = self.draw(len(x), x.device)
        self._counts[plan.layer] += 1
        self._lambda_sum += plan.lam
        self._lambda_squares += plan.lam * plan.lam
        with replacing(model, plan.layer, plan):
            logits = model(x)
        return logits, plan

    def __call__(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor):
        logits, plan = self.forward(model, x)
        return logits, plan(targets)


def build_mixer(cfg: MixingConfig, model: nn.Module, generator: torch.Generator):
    """The mixer of a config, its eligible layers checked against `model`."""
    if cfg.strategy == "none":
        return NoMixing()
    if cfg.strategy == "input_mixup":
        return Mixup((INPUT,), cfg.alpha, generator)
    layers = cfg.layers or (INPUT, *default_layers(model))
    return Mixup(check_layers(model, layers, "mixing.layers"), cfg.alpha, generator)
