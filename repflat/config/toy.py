"""The 2-D toy data sets, each declared once here, and the configs of a user's own points.

A toy set is a frozen dataclass registered with `@toy_set`: its `name`, its fields (each
with a docstring), their checks (`check_common` and its own, in `__post_init__`) and
`points()`, the generator. Everything else iterates the registry (TOY_DATA): the data
configs a run accepts (repflat.config.schema.DataConfig), loading (repflat.base.data),
the README's table (tests/test_toy_data.py holds the two together).

Every toy set is generated from its `seed` (separate from the run seed, so every arm
and seed of an experiment sees the same points), balanced (`n_per_class` points per
class, train and test together) and may flip a share of its training labels
(`label_noise`). The test split keeps the true labels, so test NLL and calibration
measure the clean task whatever the noise. scikit-learn's generators are used where one
exists, imported when asked for (it is slow to import; benchmarks/import_costs.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from repflat.strict import FieldError

MAX_TOY_POINTS = 1_000_000
"""Most points a toy set may generate: more is a typo, not an experiment on 2 cores."""
TOY_DATA: tuple[type, ...] = ()
"""The toy sets, in the order they are declared (the first is the default data set)."""


def toy_set(cls: type) -> type:
    """Register a toy data set: a frozen dataclass with a `name: Literal[...]` field and a
    `points(self)` method returning x (K · n_per_class, 2) and integer labels y."""
    global TOY_DATA
    TOY_DATA += (cls,)
    return cls


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


@toy_set
@dataclass(frozen=True)
class SpiralsData:
    name: Literal["spirals"] = "spirals"
    """K interleaved 2D spiral arms, one class per arm (the paper's Figure 1)."""
    n_classes: int = 2
    """Number of classes (spiral arms)."""
    n_per_class: int = 500
    """Points per class, train and test together."""
    noise: float = 0.04
    """Standard deviation of the Gaussian noise added to each 2D point."""
    turns: float = 1.25
    """How many full turns each arm makes."""
    label_noise: float = 0.0
    """Share of training labels replaced by another class, drawn uniformly (seeded)."""
    test_fraction: float = 0.5
    """Share of each class held out as the test split."""
    seed: int = 0
    """Seed of the data; separate from the run seed so all arms see the same points."""

    def __post_init__(self):
        check_common(self)  # classes, points, noise, label noise, split, seed
        if self.turns <= 0:
            raise FieldError("turns", "a number > 0", self.turns)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        return make_spirals(self.n_classes, self.n_per_class, noise=self.noise, turns=self.turns,
                            seed=self.seed)


@toy_set
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

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn import datasets as sk

        n = self.n_per_class
        return sk.make_moons((n, n), noise=self.noise or None, random_state=self.seed)


@toy_set
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

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn import datasets as sk

        n = self.n_per_class
        return sk.make_circles((n, n), noise=self.noise or None, factor=self.factor,
                               random_state=self.seed)


@toy_set
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

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn import datasets as sk

        return sk.make_blobs([self.n_per_class] * self.n_classes, n_features=2,
                             cluster_std=self.spread, center_box=(-self.box, self.box),
                             random_state=self.seed)


@toy_set
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

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn import datasets as sk

        return sk.make_gaussian_quantiles(n_samples=self.n_per_class * self.n_classes,
                                          n_features=2, n_classes=self.n_classes,
                                          random_state=self.seed)


@toy_set
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

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        return make_checkerboard(self.cells, self.n_per_class, noise=self.noise, seed=self.seed)


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


FILE_DATA = (ArraysData, CsvData)
"""Your own points, from a file."""


# ---------------------------------------------------------------- generators

def make_spirals(n_classes: int = 2, n_per_class: int = 500, *, noise: float = 0.04,
                 turns: float = 1.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on K spiral arms with Gaussian noise.

    Arm k is r(t) · (cos θ, sin θ) with θ = 2π·turns·t + 2πk/K and r(t) = t, for t
    drawn with density ∝ t on [0.1, 1] so points are spread evenly along the arm rather
    than crowded at the centre. Noise ~ N(0, noise²) is added to each coordinate.

    Returns `x` of shape (K · n_per_class, 2), float32, and integer labels `y`,
    class-major (all of class 0 first).
    """
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.1**2, 1.0, size=(n_classes, n_per_class)))
    theta = 2 * np.pi * turns * t + 2 * np.pi * np.arange(n_classes)[:, None] / n_classes
    x = np.stack([t * np.cos(theta), t * np.sin(theta)], axis=-1)
    x = x + rng.normal(0.0, noise, size=x.shape)
    y = np.repeat(np.arange(n_classes), n_per_class)
    return x.reshape(-1, 2).astype(np.float32), y.astype(np.int64)


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
    return x.astype(np.float32), np.concatenate(ys).astype(np.int64)
