"""Configs of the 2-D toy data sets beside spirals, and of a user's own points.

Every toy set is generated from its `seed` (separate from the run seed, so every arm
and seed of an experiment sees the same points), balanced (`n_per_class` points per
class, train and test together) and may flip a share of its training labels
(`label_noise`). The test split keeps the true labels, so test NLL and calibration
measure the clean task whatever the noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from repflat.strict import FieldError

MAX_TOY_POINTS = 1_000_000
"""Most points a toy set may generate: more is a typo, not an experiment on 2 cores."""


def check_common(cfg, *, min_classes: int = 2) -> None:
    """The checks every generated set shares (names of the offending field)."""
    n_classes = getattr(cfg, "n_classes", 2)
    if n_classes < min_classes:
        raise FieldError("n_classes", f"an integer >= {min_classes}", n_classes)
    if cfg.n_per_class < 4:
        raise FieldError("n_per_class", "an integer >= 4", cfg.n_per_class)
    if n_classes * cfg.n_per_class > MAX_TOY_POINTS:
        raise FieldError("n_per_class", f"at most {MAX_TOY_POINTS:,} points in all (n_classes × "
                         "n_per_class)", cfg.n_per_class)
    if hasattr(cfg, "noise") and not cfg.noise >= 0:
        raise FieldError("noise", "a number >= 0", cfg.noise)
    # Below 1 − 1/K a majority of each class keeps its label: the task stays learnable.
    top = 1 - 1 / n_classes
    if not 0 <= cfg.label_noise < top:
        raise FieldError("label_noise", f"a fraction in [0, {top:.3g}) (1 − 1/K, where flipped "
                         "labels would outnumber true ones)", cfg.label_noise)
    if not 0 < cfg.test_fraction < 1:
        raise FieldError("test_fraction", "a number in (0, 1)", cfg.test_fraction)
    if cfg.seed < 0:
        raise FieldError("seed", "an integer >= 0", cfg.seed)


@dataclass(frozen=True)
class MoonsData:
    name: Literal["moons"] = "moons"
    """Two interleaving half circles (scikit-learn's make_moons)."""
    n_per_class: int = 250
    """Points per class, train and test together."""
    noise: float = 0.1
    """Standard deviation of the Gaussian noise added to each coordinate."""
    label_noise: float = 0.0
    """Share of training labels replaced by another class, drawn uniformly (seeded)."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split."""
    seed: int = 0
    """Seed of the points, the label flips and the split."""

    def __post_init__(self):
        check_common(self)


@dataclass(frozen=True)
class CirclesData:
    name: Literal["circles"] = "circles"
    """A small circle inside a large one, one class each (scikit-learn's make_circles)."""
    n_per_class: int = 250
    """Points per class, train and test together."""
    noise: float = 0.05
    """Standard deviation of the Gaussian noise added to each coordinate."""
    factor: float = 0.5
    """Radius of the inner circle relative to the outer one (which has radius 1)."""
    label_noise: float = 0.0
    """Share of training labels replaced by another class, drawn uniformly (seeded)."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split."""
    seed: int = 0
    """Seed of the points, the label flips and the split."""

    def __post_init__(self):
        check_common(self)
        if not 0 < self.factor < 1:
            raise FieldError("factor", "a number in (0, 1)", self.factor)


@dataclass(frozen=True)
class BlobsData:
    name: Literal["blobs"] = "blobs"
    """K isotropic Gaussian clusters (scikit-learn's make_blobs), one class each."""
    n_classes: int = 3
    """K, the number of clusters and classes."""
    n_per_class: int = 250
    """Points per class, train and test together."""
    spread: float = 1.0
    """Standard deviation of each cluster around its centre."""
    box: float = 10.0
    """Centres are drawn uniformly from the square [−box, box]² (seeded)."""
    label_noise: float = 0.0
    """Share of training labels replaced by another class, drawn uniformly (seeded)."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split."""
    seed: int = 0
    """Seed of the centres, the points, the label flips and the split."""

    def __post_init__(self):
        check_common(self)
        if not self.spread > 0:
            raise FieldError("spread", "a number > 0", self.spread)
        if not self.box > 0:
            raise FieldError("box", "a number > 0", self.box)


@dataclass(frozen=True)
class GaussianQuantilesData:
    name: Literal["gaussian_quantiles"] = "gaussian_quantiles"
    """One standard 2-D Gaussian cut into K concentric shells of equal probability, one
    class per shell (scikit-learn's make_gaussian_quantiles)."""
    n_classes: int = 3
    """K, the number of shells and classes."""
    n_per_class: int = 250
    """Points per class, train and test together."""
    label_noise: float = 0.0
    """Share of training labels replaced by another class, drawn uniformly (seeded)."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split."""
    seed: int = 0
    """Seed of the points, the label flips and the split."""

    def __post_init__(self):
        check_common(self)


@dataclass(frozen=True)
class XorData:
    name: Literal["xor"] = "xor"
    """A checkerboard on [−1, 1]²: `cells` × `cells` squares, neighbours of different
    class (two classes); cells = 2 is XOR of the coordinates' signs."""
    cells: int = 2
    """Squares per side (>= 2)."""
    n_per_class: int = 250
    """Points per class, train and test together, uniform within their class's squares."""
    noise: float = 0.0
    """Standard deviation of Gaussian noise added after labelling (blurs the edges)."""
    label_noise: float = 0.0
    """Share of training labels replaced by another class, drawn uniformly (seeded)."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split."""
    seed: int = 0
    """Seed of the points, the label flips and the split."""

    def __post_init__(self):
        check_common(self)
        if not 2 <= self.cells <= 64:
            raise FieldError("cells", "an integer in [2, 64]", self.cells)


@dataclass(frozen=True)
class ArraysData:
    name: Literal["arrays"] = "arrays"
    """Your own points from a NumPy .npz file: `x` (n_samples, n_features), integer `y`
    (n_samples,) with labels 0..K−1, optionally `x_test` and `y_test` (else a stratified
    split of `x`), optionally `class_names` (K strings). Read without pickles."""
    path: str = "points.npz"
    """The .npz file; a relative path is relative to the config file's directory."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split when the file has no `x_test`."""
    seed: int = 0
    """Seed of the split (when the file has no `x_test`)."""

    def __post_init__(self):
        _check_path(self.path)
        _check_split(self)


@dataclass(frozen=True)
class CsvData:
    name: Literal["csv"] = "csv"
    """Your own points from a CSV file with a header row: two numeric feature columns
    and an integer label column (labels 0..K−1), named below."""
    path: str = "points.csv"
    """The CSV file; a relative path is relative to the config file's directory."""
    features: tuple[str, ...] = ("x1", "x2")
    """The two feature columns, in the order of the input's coordinates."""
    label: str = "label"
    """The label column."""
    test_path: str | None = None
    """A second CSV of the same columns as the test split; null: a stratified split."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split when there is no `test_path`."""
    seed: int = 0
    """Seed of the split (when there is no `test_path`)."""

    def __post_init__(self):
        _check_path(self.path)
        if self.test_path is not None:
            _check_path(self.test_path, "test_path")
        if len(self.features) != 2 or len(set(self.features)) != 2:
            raise FieldError("features", "two distinct column names", list(self.features))
        if self.label in self.features:
            raise FieldError("label", "a column other than the feature columns", self.label)
        _check_split(self)


def _check_path(path: str, key: str = "path") -> None:
    if not path or "\0" in path:
        raise FieldError(key, "a file path", path)


def _check_split(cfg) -> None:
    if not 0 < cfg.test_fraction < 1:
        raise FieldError("test_fraction", "a number in (0, 1)", cfg.test_fraction)
    if cfg.seed < 0:
        raise FieldError("seed", "an integer >= 0", cfg.seed)


TOY_DATA = (MoonsData, CirclesData, BlobsData, GaussianQuantilesData, XorData)
FILE_DATA = (ArraysData, CsvData)
