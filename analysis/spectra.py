"""Singular value spectra of class-conditional representations.

The *class-conditional representation* of class k at a layer is the matrix
X_k ∈ R^{n_k × d} of the rows of that layer's features whose label is k. Its
*spectrum* is σ₁ ≥ σ₂ ≥ … ≥ σ_r (r = min(n_k, d)) of

    X_k − 1 μ_kᵀ   (centred, the default: the spread of the class around its mean)
    X_k            (uncentred, `center=False`: the mean direction counts too)

Singular values are not divided by √n_k unless `scale=True` (the paper's tables do not
divide; undivided values grow with the number of samples, so compare runs with equal
class sizes or scale). A centred class of n_k ≤ d rows spans at most n_k − 1
dimensions: its last singular value is 0. Classes of fewer than two rows have no
spread and no spectrum; they still count as classes.

Two paths give the same numbers (to ~1e-7·σ₁, see `repflat.analysis.moments`):

- `svd`: LAPACK's SVD of each class in float64, the whole array in memory; the most
  accurate for tiny singular values (error ~1e-16·σ₁);
- `gram`: per-class float64 Gram matrices accumulated in chunks
  (`repflat.analysis.gram`), for arrays larger than memory and faster for large ones.

`method="auto"` (what `repflat analyze` uses) takes `svd` for arrays of at most
`SVD_MAX_VALUES` values and `gram` above, whatever the dtype and whether the array is
memory-mapped.
"""
from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from repflat.analysis.moments import Factor, LayerStats, factored, clean_spectrum
from repflat.analysis.inputs import as_features, check_inputs, check_magnitude, not_finite
from repflat.analysis.gram import CHUNK_BYTES, default_workers, gram_statistics
from repflat.errors import UserError, expected, unknown
from repflat.files import check_budget

SVD_MAX_VALUES = 1 << 22  # 4,194,304 values, e.g. 8,192 × 512: 32 MiB as float64
METHODS = ("auto", "svd", "gram")


def singular_values(x: np.ndarray, *, center: bool = True, scale: bool = False) -> np.ndarray:
    """Singular values, descending, of `x` (n_samples, n_features), centred by default.

    Computed by LAPACK's SVD in float64 whatever the input dtype, so small singular
    values are not lost to float32 round-off. `scale=True` divides by √n_samples.
    Centred, n ≤ n_features rows span at most n − 1 dimensions: σ_n is reported as 0.
    `x` may be any array-like: a numpy array, a list, a CPU torch tensor (see
    `repflat.analysis.moments.as_array`).

    Parameters
    ----------
    x : array-like, shape (n_samples, n_features)
        Float or integer rows (numpy array, list, CPU torch tensor); read whole into
        memory as float64.
    center : bool, default True
        Subtract the mean row first (the spread around the mean), else the singular
        values of `x` itself.
    scale : bool, default False
        Divide by √n_samples.

    Returns
    -------
    ndarray of float64, shape (min(n_samples, n_features),)
        σ₁ ≥ σ₂ ≥ … ≥ 0.

    Raises
    ------
    repflat.errors.UserError
        If `x` is not 2-D, holds NaN or Inf, is not an array-like of numbers, or is a
        tensor on an accelerator.
    """
    x = np.asarray(as_features(x), dtype=np.float64)
    if x.ndim != 2:
        raise expected("features", "a 2-D array (n_samples, n_features)", f"shape {x.shape}")
    if not np.isfinite(x).all():
        raise not_finite(x)
    check_magnitude(x)
    mean = x.mean(axis=0) if len(x) else None
    if center:
        x = x - mean
    s = clean_spectrum(np.linalg.svd(x, compute_uv=False), len(x), center, mean)
    return s / np.sqrt(len(x)) if scale and len(x) else s


def svd_statistics(features: np.ndarray, labels: np.ndarray, *, center: bool = True,
                   spectra: bool = True, pooled: bool = True, within: bool = True) -> LayerStats:
    """`LayerStats` by one float64 SVD per class, the array in memory (inputs checked).

    BLAS runs single-threaded: these are small matrices, whose multi-threaded LAPACK SVD
    gains little on an idle machine and loses much on a loaded one (see
    benchmarks/design_choices.py).
    """
    x = np.asarray(as_features(features), dtype=np.float64)
    if not np.isfinite(x).all():
        raise not_finite(x)
    check_magnitude(x)
    with threadpool_limits(limits=1, user_api="blas"):
        return _svd_statistics(x, labels, center, spectra, pooled, within)


def _svd_statistics(x: np.ndarray, labels: np.ndarray, center: bool, spectra: bool,
                    pooled: bool, within: bool) -> LayerStats:
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.empty((len(classes), x.shape[1]))
    factor = within and factored(*x.shape)
    w = np.zeros((x.shape[1], x.shape[1])) if within and not factor else None
    centred = []
    per_class = {}
    for k, cls in enumerate(classes):
        xk = x[inverse == k]
        means[k] = xk.mean(axis=0)
        if w is not None:
            w += (xk - means[k]).T @ (xk - means[k])
        elif factor:
            centred.append(xk - means[k])
        if spectra and len(xk) >= 2:
            per_class[int(cls)] = singular_values(xk, center=center)
    if factor:
        w = Factor(np.concatenate(centred))
    return LayerStats(classes, counts, means, center, per_class,
                      singular_values(x, center=center) if pooled else None, w)


def layer_statistics(features: np.ndarray, labels: np.ndarray, *, center: bool = True,
                     method: str = "auto", spectra: bool = True, pooled: bool = True,
                     within: bool = True, **gram_options) -> LayerStats:
    """Per-class spectra, pooled spectrum, class means and within-class scatter of a layer.

    `features` (n_samples, n_features): float or integer, in memory or memory-mapped,
    or any array-like (a list, a CPU torch tensor: converted once, a memmap kept mapped);
    `labels` (n_samples,): integer classes, likewise. `method`: see the module docstring;
    `gram_options` (`chunk_rows`, `workers`) go to `repflat.analysis.gram.gram_statistics`.
    Refused with a `UserError`: a non-2-D or non-numeric array, no rows or columns,
    labels of the wrong length or type, NaN or Inf anywhere, no class with two rows.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
        Float or integer features: numpy array (in memory or memory-mapped), list or CPU
        torch tensor.
    labels : array-like of int, shape (n_samples,)
        The class of each row.
    center : bool, default True
        Spectra of each class's rows minus their mean (X_k − 1 μ_kᵀ), else of X_k.
    method : {"auto", "svd", "gram"}, default "auto"
        "svd": one float64 SVD per class, the array in memory; "gram": float64 Gram
        matrices accumulated in chunks; "auto": "svd" up to `SVD_MAX_VALUES` values,
        "gram" above (see the module docstring).
    spectra : bool, default True
        Compute each class's spectrum.
    pooled : bool, default True
        Compute the spectrum of all rows together (the control).
    within : bool, default True
        Compute the within-class scatter (what `nc1` and `within_between_ratio` need).
    **gram_options
        `chunk_rows` (rows read at a time; default 64 MiB of float64 rows) and `workers`
        (threads; default the CPUs available), for the "gram" method; ignored by "svd".

    Returns
    -------
    LayerStats
        `classes` (K,) ascending, `counts` (K,), `means` (K, n_features), `center`,
        `spectra` {class: σ descending, shape (min(n_k, n_features),)} for the classes
        of at least two rows (empty if `spectra=False`), `pooled` (σ of all rows, or
        None) and `within` (the summed within-class scatter, (n_features, n_features) or
        its factor for wide layers, or None).

    Raises
    ------
    repflat.errors.UserError
        For the inputs listed above, an unknown `method`, or when the computation would
        need more memory than the budget ($REPFLAT_MEMORY_BUDGET, else half the memory
        available), checked from the shapes before anything is read.
    """
    features = as_features(features)
    labels = check_inputs(features, labels)
    if method not in METHODS:
        raise unknown("method", method, METHODS)
    if method == "auto":
        method = "svd" if features.shape[0] * features.shape[1] <= SVD_MAX_VALUES else "gram"
    if spectra and np.unique(labels, return_counts=True)[1].max() < 2:
        raise UserError("expected at least one class with two or more rows, "
                        "got one row per class", argument="labels")
    check_budget(memory_needed(features.shape, labels, method, gram_options.get("workers")),
                 "features", f"the spectra of an array of shape {tuple(features.shape)}")
    run = svd_statistics if method == "svd" else gram_statistics
    return run(features, labels, center=center, spectra=spectra, pooled=pooled, within=within,
               **({} if method == "svd" else gram_options))


def memory_needed(shape: tuple[int, int], labels: np.ndarray, method: str,
                  workers: int | None = None) -> int:
    """Bytes the statistics of features of `shape` take at their peak, from shapes alone
    (float64 throughout): checked before anything is read, so a small file promising a
    huge matrix is refused rather than allowed to exhaust memory."""
    n, d = int(shape[0]), int(shape[1])
    counts = np.unique(labels, return_counts=True)[1]
    within = n * d if factored(n, d) else d * d
    if method == "svd":  # the array, its centred copies and SVD work space
        return 8 * (3 * n * d + within)
    largest = int(counts.max())
    per_class = 3 * d * d if largest >= d or not factored(largest, d) else 2 * largest * d
    in_flight = 2 * min(workers or default_workers(), len(counts))
    return 8 * (in_flight * per_class + within) + CHUNK_BYTES


def class_spectra(features: np.ndarray, labels: np.ndarray, *, center: bool = True,
                  scale: bool = False, method: str = "auto", **gram_options) -> dict[int, np.ndarray]:
    """Spectrum of each class's rows: {class: σ (descending)}, classes in ascending order.

    σ are the singular values of X_k − 1 μ_kᵀ (centred, the default) or of X_k, X_k the
    rows of class k (see the module docstring).

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
        numpy array (in memory or memory-mapped), list, or CPU torch tensor.
    labels : array-like of int, shape (n_samples,)
    center : bool
        subtract each class's mean first.
    scale : bool
        divide each spectrum by √n_k.
    method, **gram_options
        see `layer_statistics`.

    Returns
    -------
    dict {label: ndarray of shape (min(n_k, n_features),)}, float64. Classes with fewer
    than two rows are left out.

    Raises
    ------
    repflat.errors.UserError
        As `layer_statistics`.
    """
    stats = layer_statistics(features, labels, center=center, method=method, pooled=False,
                             within=False, **gram_options)
    if not scale:
        return stats.spectra
    n = dict(zip(stats.classes.tolist(), stats.counts.tolist()))
    return {k: s / np.sqrt(n[k]) for k, s in stats.spectra.items()}
