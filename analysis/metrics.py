"""Flattening metrics.

"Flattening" (Verma et al. 2019, §3) means fewer directions of significant variance
per class. Two kinds of metric:

- functions of a spectrum σ₁ ≥ … ≥ σ_r ≥ 0 (a 1-D array-like, e.g. one class's from
  `repflat.analysis.spectra.class_spectra`); λ_i = σ_i² are the variances along the principal
  directions (times n);
- functions of a whole layer, features (n_samples, n_features) and labels, in memory
  or memory-mapped: `nc1` and `within_between_ratio` (Neural Collapse's variability
  collapse), also available from precomputed class moments (defined in
  `repflat.analysis.collapse`, importable from here).

The README's "Flattening metrics" table lists every definition.
"""
from __future__ import annotations

import functools

import numpy as np

from repflat.errors import expected
from repflat.analysis.inputs import as_spectrum


def spectrum_metric(*, ordered: bool = True):
    """Make `kernel(s, ...)`, which takes a spectrum already checked, the public metric
    `f(s, ...)` that checks any array-like first (`as_spectrum`: 1-D, finite, >= 0, and
    descending when `ordered`); `f.kernel` stays reachable, so code that computes many
    metrics of one spectrum checks it once (repflat.analysis.registry.spectrum_metrics)."""
    def wrap(kernel):
        @functools.wraps(kernel)
        def metric(s, *args, **kwargs):
            return kernel(as_spectrum(s, ordered=ordered), *args, **kwargs)
        metric.kernel = kernel
        return metric
    return wrap


@spectrum_metric()
def largest_singular_value(s: np.ndarray) -> float:
    """σ₁, the spread along the class's main direction (§3.2's first statistic).

    Verma et al. 2019, "Manifold Mixup: Better representations by interpolating hidden
    states", ICML 2019, §3.2.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ₁ ≥ σ₂ ≥ … ≥ σ_r ≥ 0, descending (e.g. one class's from
        `repflat.analysis.class_spectra`); checked (finite, non-negative, descending).

    Returns
    -------
    float
        σ₁, the first value of `s`; 0 for an empty spectrum.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers.
    """
    return float(s[0]) if len(s) else 0.0


@spectrum_metric()
def sum_other_singular_values(s: np.ndarray) -> float:
    """Σ_{i≥2} σ_i, the spread outside the main direction (§3.2's second statistic).

    Verma et al. 2019, "Manifold Mixup: Better representations by interpolating hidden
    states", ICML 2019, §3.2.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ₁ ≥ σ₂ ≥ … ≥ σ_r ≥ 0, descending (e.g. one class's from
        `repflat.analysis.class_spectra`); checked (finite, non-negative, descending).

    Returns
    -------
    float
        The sum of every value of `s` but the first; 0 for fewer than two values.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers.
    """
    return float(np.sum(s[1:]))


@spectrum_metric(ordered=False)
def effective_rank(s: np.ndarray) -> float:
    """Effective rank exp(H(p)), p_i = σ_i / Σ_j σ_j, H the Shannon entropy (0·log 0 = 0).

    Roy & Vetterli, "The effective rank: a measure of effective dimensionality",
    EUSIPCO 2007. Equals m for m equal non-zero singular values; 0 for an all-zero
    spectrum (a collapsed class).

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ_i ≥ 0 (e.g. one class's from `repflat.analysis.class_spectra`);
        any order; finite and >= 0 (checked).

    Returns
    -------
    float
        exp(−Σ_i p_i log p_i): from 1 (one non-zero value) to the number of non-zero
        values (all equal); 0 for an all-zero or empty spectrum.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers.
    """
    total = float(np.sum(s))
    if total <= 0:
        return 0.0
    p = np.asarray(s, dtype=np.float64) / total
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


@spectrum_metric(ordered=False)
def rankme(s: np.ndarray, eps: float = 1e-7) -> float:
    """RankMe: exp(−Σ_i p_i log p_i) with p_i = σ_i / Σ_j σ_j + ε, over all r values.

    Garrido, Balestriero, Najman & LeCun, "RankMe: Assessing the downstream performance
    of pretrained self-supervised representations by their rank", ICML 2023, Eq. 1.
    The effective rank with the paper's ε (1e-7 by default), which makes zero singular
    values count a little (each adds ≈ −ε log ε ≈ 1.6e-6 to the entropy). The paper
    applies it to uncentred embeddings; here it takes whichever spectrum it is given.
    0 for an all-zero spectrum.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ_i ≥ 0 (e.g. one class's from `repflat.analysis.class_spectra`);
        any order; finite and >= 0 (checked).
    eps : float, default 1e-7
        ε, added to every p_i (the paper's value by default).

    Returns
    -------
    float
        RankMe of `s`: `effective_rank(s)` shifted by ε (up by zero values, slightly
        down by a dominant one, e.g. 1 − 1e-7 for a single value); 0 for an all-zero or
        empty spectrum.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers.
    """
    s = np.asarray(s, dtype=np.float64)
    total = float(np.sum(s))
    if total <= 0:
        return 0.0
    p = s / total + eps
    p = p[p > 0]  # 0·log 0 = 0 (only reachable with eps = 0)
    return float(np.exp(-np.sum(p * np.log(p))))


@spectrum_metric(ordered=False)
def participation_ratio(s: np.ndarray) -> float:
    """Participation ratio (Σ_i λ_i)² / Σ_i λ_i², λ_i = σ_i²: directions sharing the variance.

    Gao, Trautmann, Yu, Santhanam, Ryu, Shenoy & Ganguli, "A theory of multineuronal
    dimensionality, dynamics and measurement", bioRxiv 2017 (Eq. 1, on covariance
    eigenvalues). Equals m for m equal non-zero σ; 0 for an all-zero spectrum.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ_i ≥ 0 (e.g. one class's from `repflat.analysis.class_spectra`);
        any order; finite and >= 0 (checked).

    Returns
    -------
    float
        (Σ_i σ_i²)² / Σ_i σ_i⁴: from 1 to the number of non-zero values; 0 for an
        all-zero or empty spectrum.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers.
    """
    lam = np.asarray(s, dtype=np.float64) ** 2
    sq = float(np.sum(lam ** 2))
    return float(np.sum(lam)) ** 2 / sq if sq > 0 else 0.0


@spectrum_metric()
def stable_rank(s: np.ndarray) -> float:
    """Stable rank ‖X‖²_F / ‖X‖²₂ = Σ_i σ_i² / σ₁²: 1 for rank one, m for m equal σ.

    Rudelson & Vershynin, "Sampling from large matrices: an approach through geometric
    functional analysis", J. ACM 54(4), 2007. Never above the rank; 0 for an all-zero
    spectrum.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ₁ ≥ σ₂ ≥ … ≥ σ_r ≥ 0, descending (e.g. one class's from
        `repflat.analysis.class_spectra`); checked (finite, non-negative, descending).
        σ₁ is taken to be the first value.

    Returns
    -------
    float
        Σ_i σ_i² / σ₁²; 0 for an empty spectrum or σ₁ = 0.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers.
    """
    if not len(s) or s[0] <= 0:
        return 0.0
    return float(np.sum((s / s[0]) ** 2))


@spectrum_metric()
def variance_share(s: np.ndarray, k: int) -> float:
    """Σ_{i≤k} σ_i² / Σ_i σ_i²: the share of variance along the top k principal directions.

    scikit-learn's `PCA.explained_variance_ratio_[:k].sum()` for a centred spectrum.
    0 for an all-zero spectrum.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ₁ ≥ σ₂ ≥ … ≥ σ_r ≥ 0, descending (e.g. one class's from
        `repflat.analysis.class_spectra`); checked (finite, non-negative, descending).
    k : int
        The number of leading directions, k ≥ 0 (k ≥ r gives 1).

    Returns
    -------
    float
        The share, in [0, 1]; 0 for an all-zero or empty spectrum.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers, or
        `k` is negative.
    """
    power, total = _power(s, k, "a number of directions >= 0")
    return float(power[:k].sum() / total) if total > 0 else 0.0


def _power(s, k: int, what: str) -> tuple[np.ndarray, float]:
    """σ_i² of a checked spectrum and their sum, for a share split at k ≥ 0 (`what` k is).
    Each share sums its own side rather than taking 1 − the other: a tiny residual share
    would otherwise be lost to cancellation."""
    if k < 0:
        raise expected("k", what, k)
    power = s ** 2
    return power, float(power.sum())


@spectrum_metric()
def numerical_rank(s: np.ndarray, rtol: float) -> int:
    """Numerical rank #{i : σ_i > rtol · σ₁}: directions above a fraction rtol of σ₁.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ₁ ≥ σ₂ ≥ … ≥ σ_r ≥ 0, descending (e.g. one class's from
        `repflat.analysis.class_spectra`); checked (finite, non-negative, descending).
        σ₁ is taken to be the first value.
    rtol : float
        The relative threshold, e.g. 0.01 (`repflat analyze`'s default, AnalysisConfig.rtol).

    Returns
    -------
    int
        The number of σ_i strictly above rtol · σ₁; 0 for an empty spectrum or σ₁ = 0.

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers.
    """
    if not len(s) or s[0] <= 0:
        return 0
    return int(np.sum(s > rtol * s[0]))


def theory_dimension(n_features: int, n_classes: int) -> int:
    """dim(H) − K + 1: Corollary 1's dimension of each class's affine subspace.

    When dim(H) > K − 1, a minimiser of the manifold mixup objective puts each class's
    training representations on a (dim(H) − K + 1)-dimensional affine subspace (Verma
    et al. 2019, "Manifold Mixup: Better representations by interpolating hidden
    states", ICML 2019, §3.1). The argument needs a strictly proper loss (cross-entropy
    and the Brier score are; their infimum is reached only in the limit) and, for "every
    minimiser", f affine or differentiable at the representations; the subspace is then
    h + ker Df(h) (repflat.analysis.discriminative measures along its complement).
    Clipped at 0.

    Parameters
    ----------
    n_features : int
        dim(H), the width of the layer.
    n_classes : int
        K, the number of classes.

    Returns
    -------
    int
        max(n_features − n_classes + 1, 0).
    """
    return max(n_features - n_classes + 1, 0)


@spectrum_metric()
def residual_variance_share(s: np.ndarray, k: int, max_rank: int | None = None) -> float:
    """Σ_{i>k} σ_i² / Σ_i σ_i²: the share of variance outside the best k-dim subspace.

    With a centred spectrum and k = theory_dimension, this is 0 exactly when the class
    lies on *some* k-dimensional affine subspace (Eckart–Young). It ignores which one:
    Corollary 1 names the null directions of the downstream map, and a class lying along
    the discriminative direction reads as flat here, while a class collapsed to a point
    (which satisfies the corollary) reads as thick, its round-off being isotropic. Read it
    beside `repflat.analysis.discriminative` (along_spread, collapsed), never alone.
    It is 1 − `variance_share(s, k)` for a non-zero spectrum.

    Undefined (NaN) where k ≥ `max_rank`, the largest rank a class of its shape can have
    (min(n_samples − 1, n_features) centred): no data of that shape has a direction
    beyond k, so the share would be 0 whatever training did, and Corollary 1 is vacuous
    there (a wide layer, a small class). A 0 then read as the corollary confirmed.

    Parameters
    ----------
    s : array-like of float, shape (r,)
        Singular values σ₁ ≥ σ₂ ≥ … ≥ σ_r ≥ 0, descending (e.g. one class's from
        `repflat.analysis.class_spectra`); checked (finite, non-negative, descending).
    k : int
        The dimension of the subspace, k ≥ 0, e.g. `theory_dimension(n_features,
        n_classes)`.
    max_rank : int, optional
        The most directions the class can span, ≥ 0; default r, the spectrum's length.

    Returns
    -------
    float
        The share, in [0, 1]; 0 for an all-zero or empty spectrum with k < max_rank;
        NaN where k ≥ max_rank (vacuous).

    Raises
    ------
    repflat.errors.UserError
        If `s` is not a 1-D array-like of finite, non-negative, descending numbers, or
        `k` or `max_rank` is negative.
    """
    power, total = _power(s, k, "a subspace dimension >= 0")
    if max_rank is not None and max_rank < 0:
        raise expected("max_rank", "a rank >= 0", max_rank)
    if k >= (len(s) if max_rank is None else max_rank):
        return float("nan")
    return float(power[k:].sum() / total) if total > 0 else 0.0


# Layer-level metrics (features and labels in, one number out) live beside these.
from repflat.analysis.collapse import (NC1_MEANS, nc1, nc1_from_moments,  # noqa: E402,F401
                                       scatter_matrices, within_between_ratio,
                                       within_between_ratio_from_moments)
