"""`repflat.Mixup`: manifold mixup at any named layer of any model, in your own loop.

    mixup = repflat.Mixup(model, ["input", "layer1", "layer2"], alpha=2.0, seed=0)
    for x, y in loader:                              # y: integer labels, as they come
        logits, targets = mixup(x, y)                # mixed at one drawn layer; soft targets
        loss = repflat.soft_cross_entropy(logits, targets)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
    mixup.counts, mixup.mean_lambda                  # where it mixed, and how much

The draw is the training loop's (repflat.training.mixing.Mixup, which this wraps): per
batch one eligible layer k uniformly and λ ~ Beta(α, α), a permutation π of the batch;
the output h of layer k becomes λ·h + (1 − λ)·h[π] through a forward hook (your model's
`forward` is untouched), the targets λ·y + (1 − λ)·y[π], and gradients flow through
every layer. `"input"` alone is input mixup. Layers are named as everywhere in repflat
(`repflat.layers(model, example)` lists them): modules, and `name:N` for a call of a
module that runs more than once per forward pass. Like torchvision's `v2.MixUp` and
timm's `Mixup`, it takes integer labels and returns soft targets; unlike them, it mixes
at any named layer, not only the input.

Randomness comes from one `torch.Generator` (a CPU one, seeded with `seed` by default),
so the same seed and batches give the same mixes, bit for bit, on the CPU.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from repflat.base.layers import base_module, default_layers, layer_names
from repflat.base.naming import check_layers
from repflat.errors import UserError, expected, public
from repflat.rundir.names import INPUT
from repflat.training.losses import soft_target_loss
from repflat.training.mixing import Mixup as _Draws


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_calls(model: nn.Module, layers: Sequence[str]) -> None:
    """Refuse, before any batch, a layer that does not run or whose module runs more than
    once under a bare name, where a trace can tell (else the first batch does)."""
    from repflat.base.graph import module_call, trace

    tr = trace(model)
    if tr is None:
        return
    modules = set(layer_names(base_module(model)))
    for name in layers:
        if name != INPUT:
            module_call(tr, name, modules)


class Mixup:
    """Manifold mixup (input mixup with `layers="input"`) for your own training loop.

    Parameters
    ----------
    model : nn.Module
        The model to mix inside; its `forward` is left as it is.
    layers : str or sequence of str, optional
        The eligible layers: `"input"`, module names (`"layer2"`), `"name:N"` for the
        N-th call of a reused module. Default: the model's declared `hidden_layers` and
        the input (repflat's own models declare them). Checked now, with the close
        matches of a misspelt name.
    alpha : float, default 2.0
        λ ~ Beta(α, α); finite and > 0 (α = 2, the paper's manifold mixup setting, puts
        λ mostly between 0.2 and 0.8).
    num_classes : int, optional
        For integer labels: the width of their one-hot targets. Default: the width of
        the model's output.
    seed : int, optional
        Seeds the default generator (default 0).
    generator : torch.Generator, optional
        A CPU generator to draw from instead (the same state gives the same mixes).

    Notes
    -----
    Calling `mixup(x, y)` runs the model once and returns `(logits, targets)`: `y` is
    integer labels `(n,)` or soft/one-hot targets `(n, K)`; `targets` are soft, `(n, K)`,
    rows summing to 1 (for one-hot or soft `y`). Pair it with `soft_cross_entropy`.
    """

    @public
    def __init__(self, model: nn.Module, layers: str | Sequence[str] | None = None, *,
                 alpha: float = 2.0, num_classes: int | None = None, seed: int | None = None,
                 generator: torch.Generator | None = None):
        if not isinstance(model, nn.Module):
            raise expected("model", "a torch nn.Module", type(model).__name__)
        if layers is None:
            layers = (INPUT, *default_layers(model))
        layers = check_layers(model, layers, "layers")
        if not layers:
            raise expected("layers", "at least one eligible layer", [])
        if len(set(layers)) != len(layers):
            raise expected("layers", "each layer once (layers are drawn uniformly)", list(layers))
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) \
                or not math.isfinite(alpha) or alpha <= 0:
            raise expected("alpha", "a finite number > 0 (λ ~ Beta(α, α))", alpha)
        if num_classes is not None and not (_is_int(num_classes) and num_classes >= 1):
            raise expected("num_classes", "an integer >= 1", num_classes)
        if seed is not None and generator is not None:
            raise UserError("expected one of them (a generator carries its own seed)",
                            argument="seed, generator")
        if seed is not None and not (_is_int(seed) and seed >= 0):
            raise expected("seed", "an integer >= 0", seed)
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        elif not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise expected("generator", "a CPU torch.Generator (the draws are made on the CPU)",
                           getattr(generator, "device", type(generator).__name__))
        _check_calls(model, layers)
        self.model, self.num_classes = model, num_classes
        self._draws = _Draws(layers, float(alpha), generator)  # it keeps the tally too

    @property
    def layers(self) -> tuple[str, ...]:
        return self._draws.layers

    @property
    def alpha(self) -> float:
        return self._draws.alpha

    @property
    def generator(self) -> torch.Generator:
        return self._draws.generator

    @property
    def counts(self) -> dict[str, int]:
        """Batches mixed at each eligible layer so far."""
        return dict(self._draws._counts)

    @property
    def mean_lambda(self) -> float:
        """The mean λ drawn so far (NaN before the first batch)."""
        n = sum(self._draws._counts.values())
        return self._draws._lambda_sum / n if n else math.nan

    @property
    def lambda_std(self) -> float:
        """The standard deviation of the λ drawn so far (NaN before the first batch): it
        shows α, which the mean (½ for any α) cannot; Beta(α, α)'s is √(1 / (4(2α + 1)))."""
        n = sum(self._draws._counts.values())
        if not n:
            return math.nan
        mean = self.mean_lambda
        return math.sqrt(max(self._draws._lambda_squares / n - mean * mean, 0.0))

    def __repr__(self) -> str:
        mixed = ", ".join(f"{layer} {n}" for layer, n in self._draws._counts.items())
        lam = "" if math.isnan(self.mean_lambda) else (
            f", mean λ {self.mean_lambda:.3f}, λ std {self.lambda_std:.3f}")
        return f"Mixup(layers={list(self.layers)}, alpha={self.alpha:g}; mixed: {mixed}{lam})"

    def _targets(self, y: object, n: int, device: torch.device) -> tuple[torch.Tensor, bool]:
        """`y` as a tensor on `device`, and whether it holds integer labels."""
        y = torch.as_tensor(y, device=device)
        if y.dim() == 1 and y.shape[0] == n and not y.is_floating_point() and not y.is_complex() \
                and y.dtype != torch.bool:
            if n and int(y.min()) < 0:
                raise expected("y", "class labels >= 0", int(y.min()))
            return y, True
        if y.dim() == 1 and y.is_floating_point():
            raise expected("y", "integer class labels (n,) or soft targets (n, n_classes); float "
                           "labels would be mixed as numbers (classes 4 and 7 giving 5.5)",
                           f"float labels of shape {tuple(y.shape)} ({y.dtype})")
        if y.dim() == 2 and y.shape[0] == n and y.is_floating_point() and bool(torch.isfinite(y).all()):
            if self.num_classes is not None and y.shape[1] != self.num_classes:
                raise expected("y", f"soft targets of {self.num_classes} classes (num_classes)",
                               f"shape {tuple(y.shape)}")
            return y, False
        raise expected("y", f"integer class labels ({n},) or finite soft targets ({n}, n_classes)",
                       f"shape {tuple(y.shape)} ({y.dtype})")

    @public
    def __call__(self, x: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits of `x` mixed at one drawn layer, and `y` mixed the same way.

        Parameters
        ----------
        x : Tensor, shape (n, ...)
            A batch of inputs.
        y : Tensor or array-like
            Integer class labels (n,), or soft / one-hot targets (n, K).

        Returns
        -------
        logits : Tensor, shape (n, K)
        targets : Tensor, shape (n, K)
            λ·t + (1 − λ)·t[π] of the one-hot (or given) targets t, in the logits' dtype.
        """
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise expected("x", "a batch of inputs (a tensor (n, ...))", type(x).__name__)
        targets, labels = self._targets(y, len(x), x.device)
        logits, plan = self._draws.forward(self.model, x)
        if labels:
            k = self.num_classes or logits.shape[-1]
            if len(targets) and int(targets.max()) >= k:
                raise expected("y", f"class labels below {k} ({'num_classes' if self.num_classes else 'the model output width'})",
                               int(targets.max()))
            targets = F.one_hot(targets.long(), k)
        return logits, plan(targets.to(logits.dtype if logits.is_floating_point() else torch.float32))


@public
def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `logits` against soft targets, as mixup trains with.

    −(1/n) Σ_i Σ_k t_ik log softmax(z_i)_k, computed in float32 or wider (torch's
    `F.cross_entropy` with class probabilities).

    Parameters
    ----------
    logits : Tensor, shape (n, K)
    targets : Tensor, shape (n, K) of probabilities (rows summing to 1), or (n,) integer
        class labels.

    Returns
    -------
    Tensor
        A scalar, differentiable in `logits`.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise expected("logits", "a tensor (n, n_classes)", getattr(logits, "shape", type(logits).__name__))
    targets = torch.as_tensor(targets, device=logits.device)
    if targets.dim() == 1 and not targets.is_floating_point() and targets.shape[0] == len(logits):
        return F.cross_entropy(logits.float() if logits.dtype in (torch.float16, torch.bfloat16)
                               else logits, targets.long())
    if targets.shape != logits.shape or not targets.is_floating_point():
        raise expected("targets", f"soft targets of the logits' shape {tuple(logits.shape)} "
                       "(or integer labels (n,))", f"shape {tuple(targets.shape)} ({targets.dtype})")
    return soft_target_loss("cross_entropy", logits, targets)
