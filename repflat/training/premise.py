"""The premise of Corollary 1, measured: how far a run is from minimising its mixup loss.

Corollary 1 speaks of minimisers of the mixup loss. The *excess mixup loss* says how far
from one a network is: the loss on a fixed set of mixes minus the infimum of that loss on
the same mixes (repflat.training.losses.loss_infimum: the mean entropy of the mixed
targets for cross-entropy, 0 for the Brier score and raw squared error). Fixed means
drawn once per run, before training, from a generator of its own: pairs (i, π(i)) of
training rows with one λ_i ~ Beta(α, α) per pair; every epoch evaluates the same mixes at
every eligible layer, in eval mode, and averages over the layers (the training loop draws
one layer per batch uniformly, so this is the expected loss over its draws). Small
excess is the premise; a statement about minimisers is tested only where it holds.

The infimum is pointwise (each mix may take its own prediction), so it is a lower
bound: where two mixes land on one hidden point with different targets, no network
reaches it, and the excess then stays above 0 at the true minimum (a built-in check:
`repflat.analysis.theory.linear_head_excess` computes that minimum in closed form for
a 2-D bottleneck before a linear head).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.special import betaincinv
from torch import nn

from repflat.base.layers import evaluating, replacing
from repflat.rundir.names import EXCESS_MIXUP_LOSS, MIXUP_LOSS, MIXUP_LOSS_INFIMUM
from repflat.base.data.batches import load_batches
from repflat.training.losses import loss_infimum, soft_target_loss

MAX_MIXES = 4096
"""At most this many pairs by default: the estimate's noise is the same for every epoch
(the mixes are fixed), so more buys little, and each epoch pays one forward pass per
eligible layer over 2 × mixes rows."""


@dataclass
class PremiseProbe:
    """Fixed mixes of training rows, and the excess mixup loss of a model on them."""

    layers: tuple[str, ...]
    loss: str
    first: torch.Tensor      # (m,) row indices
    second: torch.Tensor     # (m,) partner rows
    lam: torch.Tensor        # (m,) float64 weights of `first`
    alpha: float = 2.0
    chunk: int = 1024

    @classmethod
    def draw(cls, n_train: int, layers: tuple[str, ...], alpha: float, loss: str,
             generator: torch.Generator, n_mixes: int | None = None) -> PremiseProbe:
        """`n_mixes` pairs (default: min(n_train, MAX_MIXES)): rows drawn without
        replacement (once per pass over the rows when there are more mixes than rows), each
        with a partner from a random permutation of them, λ_i by inverting the Beta(α, α)
        CDF at a uniform draw."""
        m = min(n_train, MAX_MIXES) if n_mixes is None else n_mixes
        # more mixes than rows: each row appears once per permutation, ⌈m / n⌉ of them
        first = torch.cat([torch.randperm(n_train, generator=generator)
                           for _ in range(-(-m // n_train))])[:m]
        second = first[torch.randperm(m, generator=generator)]
        u = torch.rand(m, generator=generator, dtype=torch.float64)
        lam = torch.from_numpy(betaincinv(alpha, alpha, u.numpy()))
        return cls(tuple(layers), loss, first, second, lam, float(alpha))

    def describe(self, labels) -> dict:
        """What run.json records of the mixes: layers, loss, count, α and the share of
        pairs of one class (what `linear_head_excess` needs)."""
        y = torch.as_tensor(labels)
        same = (y[self.first] == y[self.second]).double().mean().item()
        return {"layers": list(self.layers), "loss": self.loss, "mixes": len(self.first),
                "alpha": self.alpha, "same_class_share": same}

    @torch.no_grad()
    def measure(self, model: nn.Module, data, device: torch.device) -> dict[str, float]:
        """{mixup_loss, mixup_loss_infimum, excess_mixup_loss} on the fixed mixes, in nats
        (or squared units), averaged over the eligible layers, in float64."""
        n_classes = data.n_classes
        total = torch.zeros((), dtype=torch.float64)
        infimum = torch.zeros((), dtype=torch.float64)
        m = len(self.first)
        with evaluating(model):
            for start in range(0, m, self.chunk):
                a, b = self.first[start:start + self.chunk], self.second[start:start + self.chunk]
                lam = self.lam[start:start + self.chunk].to(device)
                (xa, ya), = load_batches(data, "train", [a], device)
                (xb, yb), = load_batches(data, "train", [b], device)
                targets = (lam[:, None] * F.one_hot(ya, n_classes).double()
                           + (1 - lam[:, None]) * F.one_hot(yb, n_classes).double())
                x = torch.cat([xa, xb])
                k = len(a)
                weight = k / m
                for layer in self.layers:
                    def mix(h: torch.Tensor, lam=lam, k=k) -> torch.Tensor:
                        w = lam.to(h.dtype).view(-1, *([1] * (h.dim() - 1)))
                        return w * h[:k] + (1 - w) * h[k:]
                    with replacing(model, layer, mix):
                        logits = model(x).double()
                    total += weight * soft_target_loss(self.loss, logits, targets).cpu() / len(self.layers)
                infimum += weight * loss_infimum(self.loss, targets).cpu()
        loss, inf = float(total), float(infimum)
        return {MIXUP_LOSS: loss, MIXUP_LOSS_INFIMUM: inf, EXCESS_MIXUP_LOSS: loss - inf}
