"""The toy data sets' points, class-major, and label noise for any of them.

What each set is and how its points are drawn is declared once, in repflat.config.toy.
"""
from __future__ import annotations

import numpy as np


def _class_major(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(y, kind="stable")
    return x[order].astype(np.float32), y[order].astype(np.int64)


def flip_labels(y: np.ndarray, fraction: float, n_classes: int,
                seed: int | tuple[int, ...]) -> np.ndarray:
    """A copy of `y` with round(fraction · n) rows, chosen uniformly without replacement,
    relabelled to a class drawn uniformly among the K − 1 other classes (so every chosen
    label really changes)."""
    rng = np.random.default_rng(seed)
    out = y.copy()
    rows = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    out[rows] = (y[rows] + rng.integers(1, n_classes, size=len(rows))) % n_classes
    return out


def make_toy(cfg) -> tuple[np.ndarray, np.ndarray, int]:
    """The points (float32, class-major), labels and class count of a toy data config
    (before any label noise)."""
    x, y = cfg.points()
    return (*_class_major(np.asarray(x), np.asarray(y)), int(getattr(cfg, "n_classes", 2)))
