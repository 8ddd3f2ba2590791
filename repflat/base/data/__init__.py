"""Data sets by config: the 2-D toy sets (repflat.config.toy declares them), your own
points (.npz or CSV), scikit-learn's digits and MNIST-1D in memory, image data sets through
torchvision. Every data set has a `train` and a `test` split whose rows keep a
fixed order, so features saved for a split line up with its labels row by row (an image
data set opens only the splits asked for: an ImageFolder may have no test folder).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from collections.abc import Sequence

from repflat.config import DataConfig, DigitsData, Mnist1dData
from repflat.config.toy import FILE_DATA, TOY_DATA
from repflat.errors import expected
from repflat.rundir.names import SPLITS



@dataclass(frozen=True)
class Data:
    """The splits of a data set and what models need to know about it."""

    datasets: dict[str, Dataset]
    """Each split as a map-style torch Dataset yielding (input, label)."""
    labels: dict[str, np.ndarray]
    """Each split's integer labels, in row order."""
    n_classes: int
    input_shape: tuple[int, ...]
    arrays: dict[str, np.ndarray] | None = None
    """Each split's inputs as one array, for data sets small enough to hold in memory
    (spirals, digits): the training loop then slices tensors instead of a DataLoader."""
    augmented: Dataset | None = None
    """The training split with random augmentation, for training only; `datasets`
    stays unaugmented for evaluation and capture."""
    pixel_mean: tuple[float, ...] | None = None
    pixel_std: tuple[float, ...] | None = None
    """For image data: inputs are (pixel − mean) / std per channel, pixels in [0, 1]
    (FGSM's ε is in pixel units). None for non-image data (spirals)."""
    class_names: tuple[str, ...] | None = None
    """The name of each class (index = label), recorded in the features' manifest;
    None where classes have only numbers (spirals)."""


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


def in_memory(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int, n_classes: int,
              *, label_noise: float = 0.0, test: tuple[np.ndarray, np.ndarray] | None = None,
              **extra) -> Data:
    """Both splits in memory: a stratified split of (x, y), or `test` as given; then
    `label_noise` of the training labels flipped (seeded by `seed`, apart from the split)."""
    if test is None:
        train_rows, test_rows = stratified_split(y, test_fraction, seed=(seed, 1))
        arrays = {"train": x[train_rows], "test": x[test_rows]}
        labels = {"train": y[train_rows], "test": y[test_rows]}
    else:
        arrays, labels = {"train": x, "test": test[0]}, {"train": y, "test": test[1]}
    empty = sorted(set(range(n_classes)) - set(np.unique(labels["train"]).tolist()))
    if empty:  # a class every training row of which went to the test split
        raise expected("data.test_fraction", f"a split leaving every class training rows "
                       f"(class {empty[0]} has none)", test_fraction)
    if label_noise:
        from repflat.base.data.toy import flip_labels

        labels["train"] = flip_labels(labels["train"], label_noise, n_classes, seed=(seed, 2))
    datasets = {s: TensorDataset(torch.as_tensor(arrays[s]), torch.as_tensor(labels[s])) for s in SPLITS}
    return Data(datasets, labels, n_classes, x.shape[1:], arrays, **extra)


def load_digits_array() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8) in [0, 1]
    return x, digits.target.astype(np.int64)


def load_data(cfg: DataConfig, splits: Sequence[str] = SPLITS) -> Data:
    """The data set of a config; a missing or unreadable one is a UserError.

    `splits`: those an image data set opens (the in-memory ones always have both)."""
    if isinstance(cfg, TOY_DATA):
        from repflat.base.data.toy import make_toy

        x, y, k = make_toy(cfg)
        return in_memory(x, y, cfg.test_fraction, cfg.seed, k, label_noise=cfg.label_noise)
    if isinstance(cfg, FILE_DATA):
        from repflat.base.data.points import read_points

        p = read_points(cfg)
        test = None if p.x_test is None else (p.x_test, p.y_test)
        return in_memory(p.x, p.y, cfg.test_fraction, cfg.seed, p.n_classes, test=test,
                         class_names=p.class_names)
    if isinstance(cfg, DigitsData):
        x, y = load_digits_array()
        return in_memory(x, y, cfg.test_fraction, cfg.seed, 10, pixel_mean=(0.0,), pixel_std=(1.0,),
                         class_names=tuple(str(k) for k in range(10)))
    if isinstance(cfg, Mnist1dData):
        from repflat.base.data.mnist1d import CLASS_NAMES, load_mnist1d

        (x, y), test = load_mnist1d(cfg.samples, cfg.seed, cfg.shuffled)
        return in_memory(x, y, 0.2, cfg.seed, 10, test=test, class_names=CLASS_NAMES)
    from repflat.base.data.images import load_images

    return load_images(cfg, splits)
