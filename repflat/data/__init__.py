"""Data sets as in-memory numpy splits, chosen by `DataConfig.name`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repflat.config import DataConfig
from repflat.data.spirals import make_spirals


@dataclass(frozen=True)
class Splits:
    """Train and test arrays: inputs (n_samples, *input_shape), integer labels (n_samples,)."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.x["train"].shape[1:]


def stratified_split(y: np.ndarray, test_fraction: float, seed: int | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of train and test rows, the same share of every class held out."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_data(cfg: DataConfig) -> Splits:
    x, y = make_spirals(cfg.n_classes, cfg.n_per_class, noise=cfg.noise, turns=cfg.turns,
                        seed=cfg.seed)
    train, test = stratified_split(y, cfg.test_fraction, seed=(cfg.seed, 1))
    return Splits({"train": x[train], "test": x[test]}, {"train": y[train], "test": y[test]},
                  cfg.n_classes)
