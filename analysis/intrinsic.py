"""Intrinsic dimension per class: the nonlinear counterpart of "fewer directions of
variance", beside the linear ranks of the spectra.

Two estimators, each a pure function of one class's rows X_k (n_k, n_features), each
the estimator scikit-dimension (`skdim`) implements and tested equal to it
(tests/test_intrinsic.py), written here in numpy because importing skdim imports
matplotlib.pyplot (a backend chosen at import: DESIGN.md forbids global state at
import) and scikit-learn, and costs 2–3 s, on every `repflat analyze`:

- `twonn_dimension`: TwoNN (Facco, d'Errico, Rodriguez & Laio, "Estimating the intrinsic
  dimension of datasets by a minimal neighborhood information", Sci. Rep. 7, 2017): the
  ratio μ = r₂/r₁ of each point's second to first nearest-neighbour distance is Pareto
  with shape d on a locally uniform d-manifold; d is the slope, through the origin, of
  −log(1 − F(μ)) against log μ, F the empirical distribution over all N ratios, the
  largest 10% discarded (skdim's `TwoNN()` defaults). Local: a circle reads ≈ 1.
- `lpca_dimension`: global PCA with the Fukunaga–Olsen rule (Fukunaga & Olsen, "An
  algorithm for finding intrinsic dimensionality of data", IEEE Trans. Comput. C-20,
  1971): the number of covariance eigenvalues above α · λ_max, α = 0.05 (skdim's `lPCA`
  with `ver="FO"`). Linear: a circle reads 2, the plane it spans.

Known failure modes (why both are reported, and beside the spectra, never alone):

- duplicate points make r₁ = 0 and μ infinite: duplicates are dropped before TwoNN (a
  class of mostly repeated rows, e.g. saturated ReLUs, then has few points left);
- small n: TwoNN's fit has ~n points and underestimates above d ≈ 10 unless n grows
  exponentially with d; classes with fewer than `MIN_ROWS` distinct rows get NaN;
- noise at the scale of the nearest-neighbour distances inflates TwoNN towards the
  ambient dimension; curvature at the neighbourhood scale deflates it;
- lPCA depends on its threshold α: a spectrum decaying smoothly gives any answer
  between 1 and the rank as α moves; its value is `numerical_rank` at rtol = √α on σ
  (σ² > α σ₁²), i.e. no more than a linear rank with another cut.
"""
from __future__ import annotations

import numpy as np

from repflat.analysis.inputs import as_features, check_inputs

MIN_ROWS = 10
"""Fewest distinct rows a class needs for an intrinsic dimension (NaN below)."""
MAX_ROWS = 2000
"""Rows per class the pipeline gives the estimators (an evenly spaced subset beyond):
TwoNN needs every point's nearest neighbours."""
LPCA_ALPHA = 0.05
DISCARD = 0.1
"""TwoNN's share of the largest ratios left out of the fit (Facco et al.; skdim's default)."""
CHUNK = 512


def _rows(x) -> np.ndarray:
    x = as_features(x, "x")
    if getattr(x, "ndim", None) != 2:
        check_inputs(x, np.zeros(len(x), dtype=int))  # the usual one-line refusal
    return np.asarray(x, dtype=np.float64)


def two_nearest(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distances to its nearest and second-nearest other row (Euclidean), in
    row chunks: ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b, clipped at 0."""
    norms = np.einsum("ij,ij->i", x, x)
    r1, r2 = np.empty(len(x)), np.empty(len(x))
    for start in range(0, len(x), CHUNK):
        block = x[start:start + CHUNK]
        d2 = norms[start:start + CHUNK, None] + norms[None, :] - 2.0 * block @ x.T
        d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        two = np.partition(np.maximum(d2, 0.0), 1, axis=1)[:, :2]
        r1[start:start + len(block)], r2[start:start + len(block)] = np.sqrt(np.sort(two, axis=1)).T
    return r1, r2


def twonn_dimension(x) -> float:
    """TwoNN intrinsic dimension of the rows of x (n_samples, n_features).

    Facco et al. 2017 (module docstring): μ_i = r₂(i) / r₁(i); the N ratios sorted, the
    largest `DISCARD` share left out; d = the least-squares slope through the origin of
    y = −log(1 − i/N) on x = log μ₍ᵢ₎, i = 1 … ⌊N(1 − DISCARD)⌋. Duplicate rows are
    dropped first. Equal to skdim's `TwoNN()` (tests/test_intrinsic.py).

    Parameters
    ----------
    x : array-like, shape (n_samples, n_features)
        One class's features.

    Returns
    -------
    float
        The estimate (not an integer); NaN with fewer than `MIN_ROWS` distinct rows.
    """
    return _twonn_distinct(np.unique(_rows(x), axis=0))


def _twonn_distinct(x: np.ndarray) -> float:
    """`twonn_dimension` of rows already made distinct."""
    if len(x) < MIN_ROWS:
        return float("nan")
    r1, r2 = two_nearest(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = r2 / r1
    mu = np.sort(mu[np.isfinite(mu)])
    n = len(mu)
    keep = int(n * (1 - DISCARD))
    if keep < 2:
        return float("nan")
    xs, ys = np.log(mu[:keep]), -np.log(1 - np.arange(1, keep + 1) / n)
    denominator = float(xs @ xs)
    return float(xs @ ys / denominator) if denominator > 0 else float("nan")


def lpca_dimension(x, *, alpha: float = LPCA_ALPHA) -> float:
    """Global PCA dimension with the Fukunaga–Olsen rule: #{i : λ_i > α · λ_max}.

    Fukunaga & Olsen 1971; λ_i the eigenvalues of the covariance of x's rows, here the
    squared singular values of the centred rows (`lpca_from_spectrum`). Equal to skdim's
    `lPCA(ver="FO", alphaFO=alpha)`. Threshold-dependent (module docstring).

    Parameters
    ----------
    x : array-like, shape (n_samples, n_features)
        One class's features.
    alpha : float, default 0.05
        The share of the largest eigenvalue an eigenvalue must exceed.

    Returns
    -------
    float
        The count; NaN with fewer than `MIN_ROWS` distinct rows.
    """
    x = _rows(x)
    if len(np.unique(x, axis=0)) < MIN_ROWS:
        return float("nan")
    return lpca_from_spectrum(np.linalg.svd(x - x.mean(axis=0), compute_uv=False), alpha=alpha)


def lpca_from_spectrum(s, *, alpha: float = LPCA_ALPHA) -> float:
    """`lpca_dimension` from the singular values s of the class's centred matrix: the
    covariance's eigenvalues are s² / (n − 1), so #{i : λ_i > α · λ_max} =
    #{i : s_i² > α · s_1²}. What the pipeline uses, having the spectra already.

    Parameters
    ----------
    s : array-like
        Singular values of the centred class matrix, any order.
    alpha : float, default 0.05

    Returns
    -------
    float
        The count; NaN for an empty or all-zero spectrum.
    """
    s = np.sort(np.asarray(s, dtype=np.float64))[::-1]
    if not len(s) or s[0] <= 0:
        return float("nan")
    return float(np.count_nonzero(s * s > alpha * s[0] * s[0]))


def class_intrinsic_dimensions(features, labels, *, max_rows: int = MAX_ROWS,
                               centred_spectra: dict | None = None) -> dict[int, dict[str, float]]:
    """{class: {"twonn_dimension": d, "lpca_dimension": d}} of a layer; NaN where an
    estimator is undefined (module docstring). A class of more than `max_rows` rows is
    represented by `max_rows` of them for TwoNN, evenly spaced in row order
    (deterministic), so a large layer costs O(max_rows²) per class; a memmap is read for
    those rows only.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
    labels : array-like of int, shape (n_samples,)
    max_rows : int, default 2000
    centred_spectra : {class: singular values of the centred class matrix}, optional
        Where given, lPCA is read off them (`lpca_from_spectrum`, all of the class's
        rows) instead of computed again.

    Returns
    -------
    dict
    """
    features = as_features(features)
    labels = check_inputs(features, labels)
    out = {}
    for k in np.unique(labels).tolist():
        idx = np.flatnonzero(labels == k)
        if len(idx) > max_rows:
            idx = idx[np.linspace(0, len(idx) - 1, max_rows).round().astype(int)]
        rows = np.asarray(features[idx], dtype=np.float64)
        known = (centred_spectra or {}).get(int(k))
        distinct = np.unique(rows, axis=0)  # once: TwoNN's input and lPCA's row count
        enough = len(distinct) >= MIN_ROWS
        out[int(k)] = {"twonn_dimension": _twonn_distinct(distinct),
                       "lpca_dimension": (lpca_dimension(rows) if known is None else
                                          lpca_from_spectrum(known) if enough else float("nan"))}
    return out
