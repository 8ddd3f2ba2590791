"""MNIST-1D's reference CNN and GRU (Greydanus & Kobak, ICML 2024), layers named for
capture and mixing.

Both take sequences (n, length) (or (n, 1, length)). A layer's features are its stage's
output after the nonlinearity, as in repflat's MLP; the head sees the last stage
flattened. (The reference MLP is repflat's `mlp` with widths [100, 100], no bottleneck.)
"""
from __future__ import annotations

import torch
from torch import nn


def _sequences(x: torch.Tensor) -> torch.Tensor:
    """(n, length) from (n, length) or (n, 1, length)."""
    return x.reshape(x.shape[0], -1)


class Cnn1d(nn.Module):
    """conv1 → conv2 → conv3 → logits: Conv1d (kernels 5, 3, 3; stride 2; padding 1) →
    ReLU → [Dropout] per stage; length 40 becomes 19, 10, 5, so the head reads
    channels × 5 = 125 values at the reference's 25 channels."""

    def __init__(self, length: int, n_classes: int, channels: int = 25, dropout: float = 0.0):
        super().__init__()
        n_in = 1
        for i, kernel in enumerate((5, 3, 3), start=1):
            parts = [nn.Conv1d(n_in, channels, kernel, stride=2, padding=1), nn.ReLU()]
            parts += [nn.Dropout(dropout)] if dropout > 0 else []
            self.add_module(f"conv{i}", nn.Sequential(*parts))
            n_in = channels
            length = (length + 2 - kernel) // 2 + 1  # Conv1d's output length
        if length < 1:
            raise ValueError(f"sequences too short for three stride-2 convolutions (length {length})")
        self.logits = nn.Linear(channels * length, n_classes)
        self.hidden_layers = ("conv1", "conv2", "conv3")
        """Names of the hidden layers in forward order (the default capture and mixing set)."""

    def forward(self, x):
        h = _sequences(x).unsqueeze(1)
        for name in self.hidden_layers:
            h = getattr(self, name)(h)
        return self.logits(h.flatten(1))


class GruStates(nn.Module):
    """A GRU over the sequence (one input value per step, zero initial state) returning
    its outputs at every step, both directions, flattened: (n, length · directions · hidden).
    One tensor out, so a hook can read or mix it (nn.GRU itself returns a tuple)."""

    def __init__(self, hidden: int, bidirectional: bool):
        super().__init__()
        self.rnn = nn.GRU(1, hidden, batch_first=True, bidirectional=bidirectional)

    def forward(self, x):
        out, _ = self.rnn(_sequences(x).unsqueeze(-1))
        return out.flatten(1)


class Gru(nn.Module):
    """gru → logits: the reference bidirectional GRU (hidden 6), its states at all 40 steps
    (480 values) read by a linear head."""

    def __init__(self, length: int, n_classes: int, hidden: int = 6, bidirectional: bool = True):
        super().__init__()
        self.gru = GruStates(hidden, bidirectional)
        self.logits = nn.Linear(length * hidden * (2 if bidirectional else 1), n_classes)
        self.hidden_layers = ("gru",)
        """Names of the hidden layers in forward order (the default capture and mixing set)."""

    def forward(self, x):
        return self.logits(self.gru(x))
