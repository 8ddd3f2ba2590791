"""The 2-D toy data sets: moons, circles, blobs, Gaussian quantiles, a checkerboard, and
label noise for any of them (spirals live in spirals.py).

Every generator returns `x` (K · n_per_class, 2) float32 and integer labels `y`,
class-major, exactly `n_per_class` points per class, the same points for the same seed.
scikit-learn's generators are used where one exists.
"""
from __future__ import annotations

import numpy as np

from repflat.config import (BlobsData, CirclesData, GaussianQuantilesData, MoonsData,
                            SpiralsData, XorData)
from repflat.training.data.spirals import make_spirals


def _class_major(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(y, kind="stable")
    return x[order].astype(np.float32), y[order].astype(np.int64)


def make_checkerboard(cells: int = 2, n_per_class: int = 250, *, noise: float = 0.0,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on [−1, 1]² labelled (i + j) mod 2 by their square (i, j) of a
    `cells` × `cells` grid; cells = 2 is XOR of the signs. Each class draws its squares
    uniformly among its own, then a point uniform in the square, so classes are exactly
    balanced even when `cells` is odd; then Gaussian noise of std `noise` is added."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    squares = np.stack([i.ravel(), j.ravel()], axis=1)
    parity = squares.sum(1) % 2
    xs, ys = [], []
    for k in (0, 1):
        own = squares[parity == k]
        corner = own[rng.integers(len(own), size=n_per_class)]
        xs.append((corner + rng.uniform(size=(n_per_class, 2))) * (2 / cells) - 1)
        ys.append(np.full(n_per_class, k))
    x = np.concatenate(xs)
    x = x + rng.normal(0.0, noise, size=x.shape) if noise else x
    return _class_major(x, np.concatenate(ys))


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
    """The points, labels and class count of a toy data config (before any label noise)."""
    n, seed = cfg.n_per_class, cfg.seed
    if isinstance(cfg, SpiralsData):
        x, y = make_spirals(cfg.n_classes, n, noise=cfg.noise, turns=cfg.turns, seed=seed)
        return (*_class_major(x, y), cfg.n_classes)
    # Only for scikit-learn's sets: importing it costs ~0.7 s, which spirals (and so
    # `run --check` on them) should not pay.
    from sklearn import datasets as sk

    if isinstance(cfg, MoonsData):
        x, y = sk.make_moons((n, n), noise=cfg.noise or None, random_state=seed)
    elif isinstance(cfg, CirclesData):
        x, y = sk.make_circles((n, n), noise=cfg.noise or None, factor=cfg.factor,
                               random_state=seed)
    elif isinstance(cfg, BlobsData):
        x, y = sk.make_blobs([n] * cfg.n_classes, n_features=2, cluster_std=cfg.spread,
                             center_box=(-cfg.box, cfg.box), random_state=seed)
    elif isinstance(cfg, GaussianQuantilesData):
        x, y = sk.make_gaussian_quantiles(n_samples=n * cfg.n_classes, n_features=2,
                                          n_classes=cfg.n_classes, random_state=seed)
    elif isinstance(cfg, XorData):
        x, y = make_checkerboard(cfg.cells, n, noise=cfg.noise, seed=seed)
    else:
        raise TypeError(f"not a toy data config: {type(cfg).__name__}")
    x, y = _class_major(np.asarray(x), np.asarray(y))
    return x, y, int(getattr(cfg, "n_classes", 2))
