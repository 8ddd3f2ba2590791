"""Intrinsic dimension per class, through scikit-dimension (`skdim`): the nonlinear
counterpart of "fewer directions of variance", beside the linear ranks of the spectra.

Two estimators, each a pure function of one class's rows X_k (n_k, n_features):

- `twonn_dimension`: TwoNN (Facco, d'Errico, Rodriguez & Laio, "Estimating the intrinsic
  dimension of datasets by a minimal neighborhood information", Sci. Rep. 7, 2017): the
  ratio μ = r₂/r₁ of each point's second to first nearest-neighbour distance is Pareto
  with shape d on a locally uniform d-manifold; d from the linear fit of
  −log(1 − F(μ)) against log μ, the largest 10% of ratios discarded (skdim's default).
  Local: a circle in any ambient space reads ≈ 1.
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

scikit-dimension is a dependency of repflat (0.9 MB; everything it needs, numba
included, repflat already needs through umap-learn), imported only when an estimate is
computed (numba makes the first import cost ~2–3 s). An install without it still works:
the functions return NaN, `available()` is False, and the pipeline says so in the
report's notes instead of failing.
"""
from __future__ import annotations

import warnings

import numpy as np

from repflat.analysis.inputs import as_features, check_inputs

MIN_ROWS = 10
"""Fewest distinct rows a class needs for an intrinsic dimension (NaN below)."""
MAX_ROWS = 2000
"""Rows per class the pipeline gives the estimators (an evenly spaced subset beyond):
TwoNN needs every point's nearest neighbours."""
LPCA_ALPHA = 0.05
MISSING_NOTE = ("Intrinsic dimensions (TwoNN, lPCA) are not reported: scikit-dimension is not "
                "installed (pip install scikit-dimension).")


def _skdim():
    try:
        import skdim.id
    except ImportError:
        return None
    return skdim.id


def available() -> bool:
    """Whether scikit-dimension can be imported."""
    return _skdim() is not None


def _rows(x) -> np.ndarray:
    x = as_features(x, "x")
    if getattr(x, "ndim", None) != 2:
        check_inputs(x, np.zeros(len(x), dtype=int))  # the usual one-line refusal
    return np.asarray(x, dtype=np.float64)


def twonn_dimension(x) -> float:
    """TwoNN intrinsic dimension of the rows of x (n_samples, n_features).

    Facco et al. 2017 (see the module docstring for the estimator and its failure
    modes), through `skdim.id.TwoNN()` with its defaults (linear fit, 10% of the largest
    ratios discarded). Duplicate rows are dropped first.

    Parameters
    ----------
    x : array-like, shape (n_samples, n_features)
        One class's features.

    Returns
    -------
    float
        The estimate (not an integer); NaN with fewer than `MIN_ROWS` distinct rows or
        without scikit-dimension.
    """
    ids = _skdim()
    x = np.unique(_rows(x), axis=0)
    if ids is None or len(x) < MIN_ROWS:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skdim warns on what the NaN below reports
        value = float(ids.TwoNN().fit(x).dimension_)
    return value if np.isfinite(value) else float("nan")


def lpca_dimension(x, *, alpha: float = LPCA_ALPHA) -> float:
    """Global PCA dimension with the Fukunaga–Olsen rule: #{i : λ_i > α · λ_max}.

    Fukunaga & Olsen 1971, through `skdim.id.lPCA(ver="FO", alphaFO=alpha)`; λ_i the
    eigenvalues of the covariance of x's rows. Threshold-dependent (module docstring).

    Parameters
    ----------
    x : array-like, shape (n_samples, n_features)
        One class's features.
    alpha : float, default 0.05
        The share of the largest eigenvalue an eigenvalue must exceed.

    Returns
    -------
    float
        The count; NaN with fewer than `MIN_ROWS` distinct rows or without
        scikit-dimension.
    """
    ids = _skdim()
    x = _rows(x)
    if ids is None or len(np.unique(x, axis=0)) < MIN_ROWS:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(ids.lPCA(ver="FO", alphaFO=alpha, verbose=False).fit(x).dimension_)


def lpca_from_spectrum(s, *, alpha: float = LPCA_ALPHA) -> float:
    """`lpca_dimension` from the singular values s of the class's centred matrix: the
    covariance's eigenvalues are s² / (n − 1), so #{i : λ_i > α · λ_max} =
    #{i : s_i² > α · s_1²}. What the pipeline uses, having the spectra already (skdim's
    lPCA computes a second eigendecomposition, 0.04 s at 512 features);
    tests/test_intrinsic.py checks it equals skdim's.

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


ESTIMATORS = {"twonn_dimension": twonn_dimension, "lpca_dimension": lpca_dimension}


def class_intrinsic_dimensions(features, labels, *, max_rows: int = MAX_ROWS,
                               centred_spectra: dict | None = None) -> dict[int, dict[str, float]]:
    """{class: {"twonn_dimension": d, "lpca_dimension": d}} of a layer; NaN where an
    estimator is undefined (module docstring). A class of more than `max_rows` rows is
    represented by `max_rows` of them, evenly spaced in row order (deterministic), so a
    large layer costs O(max_rows²) per class; a memmap is read for those rows only.

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
    if not available():
        return {}
    out = {}
    for k in np.unique(labels).tolist():
        idx = np.flatnonzero(labels == k)
        if len(idx) > max_rows:
            idx = idx[np.linspace(0, len(idx) - 1, max_rows).round().astype(int)]
        rows = np.asarray(features[idx], dtype=np.float64)
        out[int(k)] = {"twonn_dimension": twonn_dimension(rows)}
        known = (centred_spectra or {}).get(int(k))
        out[int(k)]["lpca_dimension"] = (lpca_dimension(rows) if known is None else
                                         lpca_from_spectrum(known) if len(np.unique(rows, axis=0)) >= MIN_ROWS
                                         else float("nan"))
    return out
