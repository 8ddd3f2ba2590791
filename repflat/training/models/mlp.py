"""A fully connected classifier whose hidden layers have names.

    input → fc1 → … → fcA → bottleneck → fc(A+1) → … → logits

Each fc layer is Linear → [BatchNorm1d] → activation → [Dropout]; the bottleneck is
Linear → [BatchNorm1d] with no activation, so the plane panels d and e draw is not
folded by a ReLU and Corollary 1's affine subspaces can be seen in it directly. A
layer's *features* are its block's output; in eval mode dropout is the identity, so
captured features never carry dropout noise.
"""
from __future__ import annotations

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}


def _block(n_in: int, n_out: int, *, activation: str | None, batch_norm: bool,
           dropout: float) -> nn.Sequential:
    parts: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if batch_norm:
        parts.append(nn.BatchNorm1d(n_out))
    if activation is not None:
        parts.append(ACTIVATIONS[activation]())
    if dropout > 0:
        parts.append(nn.Dropout(dropout))
    return nn.Sequential(*parts)


class MLP(nn.Module):
    def __init__(self, in_features: int, n_classes: int, widths: tuple[int, ...] = (64, 64),
                 bottleneck: int | None = 2, widths_after: tuple[int, ...] = (64, 64), *,
                 activation: str = "relu", dropout: float = 0.0, batch_norm: bool = False):
        super().__init__()
        plan = [(f"fc{i + 1}", w, activation, dropout) for i, w in enumerate(widths)]
        if bottleneck is not None:
            plan.append(("bottleneck", bottleneck, None, 0.0))
        plan += [(f"fc{len(widths) + i + 1}", w, activation, dropout)
                 for i, w in enumerate(widths_after)]
        n_in = in_features
        for name, width, act, p in plan:
            self.add_module(name, _block(n_in, width, activation=act, batch_norm=batch_norm,
                                         dropout=p))
            n_in = width
        self.logits = nn.Linear(n_in, n_classes)
        self.hidden_layers = tuple(name for name, *_ in plan)
        """Names of the hidden layers in forward order (the default capture and mixing set)."""

    def forward(self, x):
        x = x.flatten(1)
        for name in self.hidden_layers:
            x = getattr(self, name)(x)
        return self.logits(x)
