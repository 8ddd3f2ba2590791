"""The discriminative directions of a layer: where its downstream map looks.

Corollary 1 constrains each class along the directions in which the logits change,
the row space of the Jacobian Df(h) of the logits with respect to the layer's output h;
the null directions of Df are left free (PAPER.md, "What the argument needs"). The
softmax ignores a shift of all logits, so the logits are class-centred first,
z̃ = z − (1/K) Σ_k z_k, whose Jacobian J̃(h) = (I − 11ᵀ/K) Df(h) has rank at most K − 1.

What is saved, per (split, epoch, layer), is a per-class summary small enough for any
run: the average Jacobian outer product of class k,

    G_k = (1/n_k) Σ_{i: y_i = k} J̃(h_i)ᵀ J̃(h_i)        (n_features × n_features),

stored as its top-r eigenpairs in one array of shape (K, r, n_features) whose rows are
√λ_j v_j (so G_k ≈ F_kᵀ F_k, exactly when rank G_k ≤ r), with r = min(n_features,
max(2(K − 1), 8)); the trace of G_k (the Jacobian's whole energy) and the class counts go
in the manifest entry. The analysis takes the top K − 1 directions of G_k as class k's
discriminative subspace (repflat.analysis.discriminative). Cost: one forward pass and K
backward passes per batch, for every layer at once (torch.autograd.grad of each centred
logit summed over the batch: rows of a sample depend on that sample alone in eval mode);
memory K · n_features² float64 per layer while it runs (benchmarks/discriminative.py).

The Jacobian of a layer read with reduce `avg` is taken along a uniform shift of each
channel over its spatial positions (the sum over positions of ∂z/∂h); `max` has no such
direction and is not supported, nor are FX node names (modules and `module:N` only).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from repflat.base.layers import evaluating, hooked, is_module_layer, layer_names
from repflat.capture.engine import batch_indices, iterate
from repflat.capture.inputs import as_rows
from repflat.errors import UserError
from repflat.files import check_budget
from repflat.rundir.names import INPUT

MAX_BYTES = 2**30
"""Largest accumulator summarised: K · width² float64 (1 GiB: width 8,192 at K = 2,
3,663 at K = 10, 1,158 at K = 100). A layer that needs more is left out of the
summaries, with a line saying so, and training goes on (a run must not die at a capture)."""


def max_width(n_classes: int) -> int:
    """The widest layer whose K · width² float64 accumulator fits in MAX_BYTES."""
    return int((MAX_BYTES / (8 * max(n_classes, 1))) ** 0.5)


def factor_rank(n_features: int, n_classes: int) -> int:
    """r: eigenpairs kept per class, min(n_features, max(2(K − 1), 8))."""
    return min(n_features, max(2 * (n_classes - 1), 8))


def supported(model: nn.Module, layers: Iterable[str], reduce: str) -> tuple[str, ...]:
    """The layers whose discriminative directions can be captured (modules, any reduce
    but `max` for outputs with spatial axes, which the capture finds out per batch)."""
    modules = set(layer_names(model))
    return tuple(l for l in layers if is_module_layer(l, modules))


def _reduce_jacobian(g: torch.Tensor, reduce: str) -> torch.Tensor | None:
    """The Jacobian in the captured features' coordinates; None for `max` over spatial
    axes, which has no direction to differentiate along."""
    if g.dim() <= 2 or reduce == "flatten":
        return g.reshape(len(g), -1)
    if reduce == "avg":  # a uniform shift of each channel over its positions
        return g.sum(dim=tuple(range(2, g.dim())))
    return None


def batch_jacobians(model: nn.Module, x: torch.Tensor, layers: Sequence[str], *,
                    reduce: str = "flatten") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits (n, K) and, for each layer, the Jacobian of the class-centred logits with
    respect to its output, (n, K, n_features), of one batch (the model's mode as it is);
    a layer read with reduce `max` over spatial axes is left out (no direction)."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str, output: torch.Tensor) -> torch.Tensor:
        if name == INPUT:
            leaf = output.detach().requires_grad_(True)
            outputs[name] = leaf
            return leaf
        outputs[name] = output
        return output.clone()  # later in-place ops (ReLU(inplace=True)) act on the copy

    with torch.enable_grad(), hooked(model, layers, keep):
        logits = model(x)
        centred = logits - logits.mean(dim=1, keepdim=True)
        missing = [l for l in layers if l not in outputs]
        if missing:
            raise UserError(f"layer {missing[0]!r} did not run in the "
                            "forward pass", argument="capture.discriminative")
        K = logits.shape[1]
        rows = {l: [] for l in layers}
        tensors = [outputs[l] for l in layers]
        for c in range(K):
            grads = torch.autograd.grad(centred[:, c].sum(), tensors, retain_graph=c < K - 1,
                                        allow_unused=True)
            for l, t, g in zip(layers, tensors, grads):
                g = torch.zeros_like(t) if g is None else g  # a layer the logits ignore
                rows[l].append(_reduce_jacobian(g, reduce))
    return logits.detach(), {l: torch.stack(r, dim=1).detach() for l, r in rows.items()
                             if all(x is not None for x in r)}


class GramAccumulator:
    """Σ_{i in class k} J̃_iᵀ J̃_i per class and layer, in float64, batch by batch."""

    def __init__(self, n_classes: int):
        self.n_classes = n_classes
        self.sums: dict[str, torch.Tensor] = {}
        self.counts = np.zeros(n_classes, dtype=np.int64)
        self.skipped: dict[str, str] = {}

    def add(self, jacobians: dict[str, torch.Tensor], y: torch.Tensor) -> None:
        y = y.cpu()
        for layer, J in jacobians.items():
            if layer in self.skipped:
                continue
            J = J.double().cpu()
            d = J.shape[2]
            if layer not in self.sums:
                if d > max_width(self.n_classes):  # a training run goes on without this summary
                    self.skipped[layer] = (f"{d} features, more than {max_width(self.n_classes)} at "
                                           f"{self.n_classes} classes (reduce avg narrows conv maps)")
                    continue
                check_budget(self.n_classes * d * d * 8, "capture.discriminative",
                             f"the Jacobian summary of layer {layer!r}")
                self.sums[layer] = torch.zeros(self.n_classes, d, d, dtype=torch.float64)
            for k in torch.unique(y).tolist():
                Jk = J[y == k].reshape(-1, d)
                self.sums[layer][k] += Jk.T @ Jk
        self.counts += np.bincount(y.numpy(), minlength=self.n_classes)[:self.n_classes]

    def summaries(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{layer: (factor (K, r, n_features) float64, trace (K,))} of G_k = sum / n_k."""
        out = {}
        n = np.maximum(self.counts, 1)
        for layer, sums in self.sums.items():
            G = sums.numpy() / n[:, None, None]
            d = G.shape[1]
            r = factor_rank(d, self.n_classes)
            factor = np.zeros((self.n_classes, r, d))
            for k in range(self.n_classes):
                w, v = np.linalg.eigh((G[k] + G[k].T) / 2)
                top = np.argsort(w)[::-1][:r]
                factor[k] = (np.sqrt(np.clip(w[top], 0, None))[:, None] * v[:, top].T)
            out[layer] = (factor, np.trace(G, axis1=1, axis2=2))
        return out


def class_jacobian_summaries(model: nn.Module, batches, layers: Sequence[str], n_classes: int, *,
                             device: torch.device, reduce: str = "flatten", skipped: dict | None = None
                             ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The per-class Jacobian summaries (see the module docstring) of `layers` over
    `batches` of (x, y), in eval mode, and the class counts. Layers that cannot be
    summarised (too wide, reduce `max`) are left out, with the reason in `skipped`."""
    acc = GramAccumulator(n_classes)
    with evaluating(model):
        for x, y in batches:
            _, jac = batch_jacobians(model, x.to(device), layers, reduce=reduce)
            acc.add(jac, y)
            for layer in layers:
                if layer not in jac:
                    acc.skipped.setdefault(layer, f"read with reduce {reduce!r}, which has no direction")
    if skipped is not None:
        skipped.update(acc.skipped)
    return acc.summaries(), acc.counts


def rows_summaries(model: nn.Module, rows, layers: Sequence[str], n_classes: int, *,
                   device: torch.device, batch_size: int, reduce: str = "flatten"
                   ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray, dict[str, str]]:
    """`class_jacobian_summaries` of one split as an extraction holds it (a Dataset, or a
    loader's Rows with their dataset indices and collate_fn): the summaries, the class
    counts and the layers left out with why. The order of the rows does not matter (the
    summary is a per-class average), so a loader's batches are not needed here."""
    rows = as_rows(rows)
    order = np.arange(len(rows)) if rows.order is None else np.asarray(rows.order)
    batches = [order[r.start:r.stop] for r in batch_indices(len(order), batch_size)]
    skipped: dict[str, str] = {}
    summaries, counts = class_jacobian_summaries(
        model, iterate(rows.dataset, batches, 0, rows.collate), supported(model, layers, reduce),
        n_classes, device=device, reduce=reduce, skipped=skipped)
    skipped |= {l: "not a module's output (a function node or one call of a reused module)"
                for l in layers if l not in summaries and l not in skipped}
    return summaries, counts, skipped
