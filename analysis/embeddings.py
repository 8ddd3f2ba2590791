"""2D embeddings of a captured layer: how the classes sit in a hidden space.

`embed` maps features (n_samples, n_features) to (n_samples, 2) with PCA (scikit-learn,
exact SVD), t-SNE (scikit-learn, PCA initialisation) or UMAP (umap-learn), every one
seeded so the same features give the same picture. `embed_runs` embeds one layer of one
run per arm (the lowest seed) into a tidy frame, subsampling large feature sets at
random (seeded) and recording how many samples there were; `plot_embeddings` draws it,
one panel per arm and method, points coloured by class, the subsampling stated on the
figure.

Features come from files anyone may have written, so nothing reaches the embedding
methods that they cannot take (`embedding_problem`): a layer whose rows are all
identical (dead ReLUs) crashed the process in scikit-learn's t-SNE, whose PCA
initialisation divides by a zero spread. Such a layer is not embedded; `embed` refuses
it with a UserError and `embed_runs` leaves the arm out with a sentence saying why.

umap-learn is imported inside `embed` only: importing it compiles numba code (its time:
benchmarks/cli_latency.py --imports), which nobody who asks for PCA or t-SNE should wait for.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from repflat.analysis.inputs import as_features
from repflat.analysis.runs import lowest_seed, run_columns
from repflat.analysis.tidy import arm_order
from repflat.errors import UserError, expected, unknown
from repflat.rundir.run import RunInfo

METHODS = ("pca", "tsne", "umap")
NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
MIN_SAMPLES = 4
COLUMNS = ["run", "arm", "strategy", "seed", "split", "layer", "epoch", "method", "sample",
           "class", "class_name", "x", "y", "n_total"]


def subsample(n_samples: int, max_samples: int | None, seed: int = 0) -> np.ndarray:
    """Sorted row indices: all rows, or `max_samples` of them drawn without replacement."""
    if max_samples is None or n_samples <= max_samples:
        return np.arange(n_samples)
    return np.sort(np.random.default_rng(seed).choice(n_samples, max_samples, replace=False))


def embedding_problem(features: np.ndarray) -> str | None:
    """Why the rows of `features` (n_samples, n_features) cannot be embedded, in words
    that follow "has" (None: they can): fewer than 4 rows, values that are not finite,
    or no spread (all rows identical, e.g. a layer of dead ReLUs: there is nothing to
    show, and t-SNE's PCA initialisation divides by the zero spread)."""
    x = as_features(features)
    n = len(x)
    if n < MIN_SAMPLES:
        return f"only {n} rows (at least {MIN_SAMPLES} are needed)"
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        return f"{bad} non-finite values (NaN or Inf)"
    if not (x != x[:1]).any():
        return f"no spread (all {n} rows identical" + (", e.g. dead ReLUs)" if not x.any() else ")")
    return None


def _unit_scale(x: np.ndarray) -> np.ndarray:
    """`x` centred, scaled by powers of two (exactly) to a largest |value| in [0.5, 1).

    t-SNE and UMAP see only distances relative to each point's neighbours, so the scale
    is theirs to ignore, but scikit-learn's t-SNE squares distances in float32 and
    crashed the process on spreads below ~1e-25 or above ~1e40."""
    x = np.ldexp(x, -np.frexp(np.abs(x).max())[1])  # first, so the mean cannot overflow
    x = x - x.mean(axis=0)
    return np.ldexp(x, -np.frexp(np.abs(x).max())[1])


def embed(features: np.ndarray, *, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Coordinates (n_samples, 2) of `features` (n_samples, n_features).

    pca: projection on the first two principal axes (centred, exact SVD; a 1-feature
    input gets a zero second coordinate). tsne: van der Maaten & Hinton (2008), perplexity
    min(30, (n_samples − 1) / 3), PCA initialisation. umap: McInnes et al. (2018),
    n_neighbors min(15, n_samples − 1). t-SNE and UMAP are seeded with `seed` (UMAP then
    runs single-threaded, which its authors require for reproducibility); features wider
    than 100 are first reduced to their 50 principal components, as both methods'
    authors recommend for wide inputs, and given to t-SNE and UMAP centred at unit scale.
    Features with no spread (all rows identical), fewer than 4 rows or values that are
    not finite are refused (`embedding_problem`).
    """
    if method not in METHODS:
        raise unknown("method", method, METHODS)
    x = np.asarray(as_features(features), dtype=np.float64)
    if x.ndim != 2:
        raise expected("features", "an array of shape (n_samples, n_features)", x.shape)
    problem = embedding_problem(x)
    if problem is not None:
        raise expected("features", f"at least {MIN_SAMPLES} finite rows, not all identical "
                       "(something to embed)", problem)
    # One thread: on a loaded machine t-SNE's OpenMP threads fight the load (on an idle one
    # they help a little); benchmarks/design_choices.py measures both on the machine at hand.
    with threadpool_limits(1):
        return _embed(x, method, seed)


def _embed(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    # Imported here, not at the top: an analysis without embeddings (`--figures none`)
    # should not pay scikit-learn's import (benchmarks/cli_latency.py --imports).
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(x)
    if method == "pca":
        k = min(2, x.shape[1])
        out = PCA(n_components=k, svd_solver="full").fit_transform(x)
        return np.pad(out, ((0, 0), (0, 2 - k)))
    if x.shape[1] > 100:
        x = PCA(n_components=min(50, n), svd_solver="full").fit_transform(x)
    x = _unit_scale(x)
    if method == "tsne":
        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3),
                    init="pca" if x.shape[1] >= 2 else "random",
                    random_state=seed).fit_transform(x)
    import umap  # noqa: PLC0415 (deliberately late: numba compiles on import)

    with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": we know
        warnings.simplefilter("ignore", UserWarning)
        return umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed,
                         n_jobs=1).fit_transform(x)


def _pick(runs: list[RunInfo], arm: str, split: str, layer: str) -> RunInfo | None:
    found = [r for r in runs if r.name == arm and r.features.select(split=split, layer=layer)]
    return lowest_seed(found)


@dataclass(frozen=True)
class Skipped:
    """An arm whose layer was not embedded, and why."""

    arm: str
    seed: object
    layer: str
    reason: str
    """Words that follow "has", from `embedding_problem`."""

    def sentence(self) -> str:
        return f"{self.layer} of {self.arm} (seed {self.seed}) has {self.reason}: nothing to embed."


@dataclass(frozen=True)
class Embedded:
    """What `embed_runs` found: the tidy frame of the embedded arms and the arms left out."""

    data: pd.DataFrame
    skipped: tuple[Skipped, ...] = ()
    without: tuple[str, ...] = ()
    """Arms none of whose runs saved the layer (another model's layers, say)."""
    layer: str = ""
    split: str = ""

    def __repr__(self) -> str:
        return (f"Embedded(arms={self.arms}, methods={list(dict.fromkeys(self.data['method']))}, "
                f"skipped={[s.arm for s in self.skipped]}, without={list(self.without)})")

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(self.data["arm"]))

    @property
    def notes(self) -> list[str]:
        """One sentence per arm left out, naming the arm, its seed, the layer and why; and
        one naming the arms without the layer (they were dropped without a word)."""
        notes = [s.sentence() for s in self.skipped]
        if self.without:
            arms = ", ".join(self.without)
            notes.append(f"Not in the embeddings: {arms}, whose runs saved no layer "
                         f"{self.layer} for the {self.split} split.")
        return notes


def embed_runs(runs: list[RunInfo], *, layer: str, split: str = "train",
               methods: tuple[str, ...] = ("pca",), max_samples: int | None = 2000,
               seed: int = 0) -> Embedded:
    """`embedding_frame`'s rows for every arm that has something to embed, and the arms
    that do not (all rows identical, too few rows, values not finite), each with why."""
    for m in methods:
        if m not in METHODS:
            raise unknown("embeddings", m, METHODS)
    frames, skipped, without, found = [], [], [], False
    for arm in arm_order(r.name for r in runs):
        run = _pick(runs, arm, split, layer)
        if run is None:
            without.append(arm)
            continue
        found = True
        fs = run.features
        epoch = max(e.epoch for e in fs.select(split=split, layer=layer))
        labels = fs.labels(split)
        array = fs.load(fs.get(split, epoch, layer), mmap=True)  # read only the rows we keep
        if array.ndim != 2 or len(array) != len(labels):
            raise expected(f"features {run.run_id}/{split}/{epoch}/{layer}",
                           f"shape ({len(labels)}, n_features) to match the labels", array.shape)
        rows = subsample(len(array), max_samples, seed)
        x = np.asarray(array[rows], dtype=np.float64)
        problem = embedding_problem(x)
        if problem is not None:
            skipped.append(Skipped(arm, run.seed, layer, problem))
            continue
        names = {int(k): fs.class_name(int(k)) for k in np.unique(labels[rows])}
        for method in methods:
            coords = embed(x, method=method, seed=seed)
            frames.append(pd.DataFrame({
                **run_columns(run), "split": split, "layer": layer, "epoch": epoch,
                "method": method, "sample": rows, "class": labels[rows].astype(np.int64),
                "class_name": [names[int(k)] for k in labels[rows]],
                "x": coords[:, 0], "y": coords[:, 1], "n_total": len(array)}))
    if not found:
        raise UserError(f"no run saved layer {layer!r} for split {split!r}",
                        argument="embedding_layer")
    data = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return Embedded(data.astype({"seed": "Int64", "class": "Int64"}), tuple(skipped),
                    tuple(without), layer, split)


def embedding_frame(runs: list[RunInfo], *, layer: str, split: str = "train",
                    methods: tuple[str, ...] = ("pca",), max_samples: int | None = 2000,
                    seed: int = 0) -> pd.DataFrame:
    """One row per (arm, method, sample): the sample's 2D coordinates `x`, `y`, its class
    (label, Int64) and `class_name`, its row in the layer's array (`sample`) and the
    layer's size (`n_total`), at each arm's lowest-seed run's last saved epoch. Rows are subsampled alike for every method. Arms
    with nothing to embed are left out (`embed_runs` says which and why)."""
    return embed_runs(runs, layer=layer, split=split, methods=methods,
                      max_samples=max_samples, seed=seed).data


def sampling_note(data: pd.DataFrame, seed: int = 0) -> str:
    """What the panels show, e.g. 'fc3, train split, epoch 300: all 500 samples per panel'."""
    first = data.iloc[0]
    shown = data.groupby(["arm", "method"]).size().max()
    total = int(data["n_total"].max())
    where = f"{first['layer']}, {first['split']} split, epoch {first['epoch']}"
    if shown >= total:
        return f"{where}: all {total} samples per panel"
    return (f"{where}: {shown} of {total} samples per panel, drawn at random "
            f"(seed {seed}; the same samples in every panel of a run)")
