"""Metrics of a whole layer: Neural Collapse's variability collapse (NC1) and the
within/between-class variance ratio, from features and labels or from class moments.

Re-exported by `repflat.analysis.metrics`, where the README's metric table points; kept
apart because their between-class covariance has a convention to choose (`mean`).
"""
from __future__ import annotations

import numpy as np

from repflat.errors import expected
from repflat.analysis.moments import Factor, LayerStats, scatter_quadratic, scatter_trace

NC1_MEANS = ("global", "class_means")


def scatter_matrices(within: np.ndarray, means: np.ndarray, counts: np.ndarray, *,
                     mean: str = "global") -> tuple[np.ndarray, np.ndarray]:
    """Papyan et al.'s Σ_W and the centred class means M (K, d) with Σ_B = Mᵀ M / K.

    Σ_W = (1/N) Σ_k Σ_{i∈k} (h_i − μ_k)(h_i − μ_k)ᵀ (`within` is the sum, N = Σ n_k);
    Σ_B = (1/K) Σ_k (μ_k − μ_G)(μ_k − μ_G)ᵀ. `mean` chooses μ_G:

    - "global" (default): the mean of all N rows, Σ_k n_k μ_k / N, as Papyan, Han &
      Donoho (2020) define it in their text;
    - "class_means": the unweighted mean of the class means, Σ_k μ_k / K, as their
      released code computes it (`muG = mean(M)` over the classes).

    They agree on balanced classes. Otherwise Σ_B(global) = Σ_B(class_means) + (μ_G −
    μ̄)(μ_G − μ̄)ᵀ (the class means' mean μ̄ minimises the spread about a point), with the
    same range, so the global convention's Σ_B is larger and its NC1 and within/between
    ratio smaller. M is returned rather than Σ_B so that Σ_B⁺ can come from M's SVD
    without squaring.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if mean not in NC1_MEANS:
        raise expected("mean", "one of " + ", ".join(NC1_MEANS), mean)
    grand = counts @ means / counts.sum() if mean == "global" else means.mean(axis=0)
    if isinstance(within, Factor):  # S/N = (F/√N)ᵀ(F/√N)
        return Factor(within.rows / np.sqrt(counts.sum())), means - grand
    return within / counts.sum(), means - grand


def nc1_from_moments(within: np.ndarray, means: np.ndarray, counts: np.ndarray, *,
                     mean: str = "global") -> float:
    """NC1 = Tr(Σ_W Σ_B⁺) / K from class moments (see `nc1`; `mean` as in
    `scatter_matrices`); NaN if K < 2 or Σ_B = 0."""
    sigma_w, m = scatter_matrices(within, means, counts, mean=mean)
    k = len(means)
    if k < 2:
        return float("nan")
    _, sv, vt = np.linalg.svd(m / np.sqrt(k), full_matrices=False)
    if not len(sv) or sv[0] <= 0:
        return float("nan")
    keep = sv > sv[0] * max(m.shape) * np.finfo(np.float64).eps  # numpy's matrix_rank cut
    v, sv = vt[keep], sv[keep]
    # Tr(Σ_W V S⁻² Vᵀ) = Σ_j v_jᵀ Σ_W v_j / s_j²
    return float(np.sum(scatter_quadratic(sigma_w, v) / sv ** 2) / k)


def within_between_ratio_from_moments(within: np.ndarray, means: np.ndarray,
                                      counts: np.ndarray, *, mean: str = "global") -> float:
    """Tr(Σ_W) / Tr(Σ_B) from class moments (see `within_between_ratio`)."""
    sigma_w, m = scatter_matrices(within, means, counts, mean=mean)
    between = float(np.sum(m ** 2)) / len(means)
    return scatter_trace(sigma_w) / between if len(means) > 1 and between > 0 else float("nan")


def _layer(features: np.ndarray | LayerStats, labels: np.ndarray | None) -> LayerStats:
    if isinstance(features, LayerStats):
        return features
    from repflat.analysis.spectra import layer_statistics

    return layer_statistics(features, labels, spectra=False, pooled=False)


def nc1(features: np.ndarray | LayerStats, labels: np.ndarray | None = None, *,
        mean: str = "global") -> float:
    """Variability collapse NC1 = Tr(Σ_W Σ_B⁺) / K of features (n_samples, n_features).

    Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal phase of
    deep learning training", PNAS 117(40), 2020, Figure 6: Σ_W the within-class
    covariance averaged over all N samples, Σ_B the covariance of the K class means
    about the global mean μ_G (averaged over classes; `mean="class_means"` takes μ_G as
    the mean of the class means instead, as the authors' released code does: the two
    agree on balanced classes, see `scatter_matrices`), ⁺ the Moore–Penrose
    pseudo-inverse (singular values of Σ_B's square root below numpy's matrix_rank
    tolerance count as 0). 0 when every class sits on its mean; scale-invariant.
    NaN with fewer than two classes or when all class means coincide. Also takes a
    precomputed `repflat.analysis.moments.LayerStats`.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features), or LayerStats
        Float or integer features (numpy array, memmap, list, CPU torch tensor), or the
        `repflat.analysis.LayerStats` of a layer already computed (then `labels` is
        not used).
    labels : array-like of int, shape (n_samples,), optional
        The class of each row; required unless `features` is a LayerStats.
    mean : {"global", "class_means"}, default "global"
        The centre of Σ_B: the mean of all rows (the paper's text) or of the class
        means (the paper's code).

    Returns
    -------
    float
        Tr(Σ_W Σ_B⁺) / K, ≥ 0; NaN with fewer than two classes or coinciding class means.

    Raises
    ------
    repflat.errors.UserError
        As `layer_statistics`: labels missing or of the wrong length or type, features
        not 2-D or not numeric, NaN or Inf, more memory than the budget.
    """
    st = _layer(features, labels)
    return nc1_from_moments(st.within, st.means, st.counts, mean=mean)


def within_between_ratio(features: np.ndarray | LayerStats, labels: np.ndarray | None = None, *,
                         mean: str = "global") -> float:
    """Tr(Σ_W) / Tr(Σ_B): within-class variance over the variance of the class means.

    Σ_W and Σ_B as in `nc1` (Papyan et al. 2020; `mean` the centre of Σ_B, as there). Unlike NC1 it weighs every direction
    alike, so it stays defined when Σ_B is rank-deficient; 0 when classes collapse to
    their means. NaN with fewer than two classes or when all class means coincide.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features), or LayerStats
        Float or integer features (numpy array, memmap, list, CPU torch tensor), or the
        `repflat.analysis.LayerStats` of a layer already computed (then `labels` is
        not used).
    labels : array-like of int, shape (n_samples,), optional
        The class of each row; required unless `features` is a LayerStats.
    mean : {"global", "class_means"}, default "global"
        The centre of Σ_B, as in `nc1`.

    Returns
    -------
    float
        Tr(Σ_W) / Tr(Σ_B), ≥ 0; NaN with fewer than two classes or coinciding class means.

    Raises
    ------
    repflat.errors.UserError
        As `layer_statistics`: labels missing or of the wrong length or type, features
        not 2-D or not numeric, NaN or Inf, more memory than the budget.
    """
    st = _layer(features, labels)
    return within_between_ratio_from_moments(st.within, st.means, st.counts, mean=mean)
