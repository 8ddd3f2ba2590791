"""Metrics of a whole layer: Neural Collapse's variability collapse (NC1) and the
within/between-class variance ratio, from features and labels or from class moments.

Re-exported by `repflat.analysis.metrics`, where the README's metric table points; kept
apart because their between-class covariance has a convention to choose (`mean`).
"""
from __future__ import annotations

import numpy as np

from repflat.errors import expected
from repflat.analysis.moments import Factor, LayerStats, scatter_quadratic, scatter_trace
from repflat.analysis.inputs import as_features

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


# ------------------------------------------------------------ NC2, NC3, NC4 and CDNV
#
# Names of the NC1 conventions on offer: `nc1` is Papyan, Han & Donoho's Tr(Σ_W Σ_B⁺)/K
# (Han, Papyan & Donoho 2022 compute the same pseudo-inverse through an SVD, as here);
# `within_between_ratio` is the trace quotient Tr(Σ_W)/Tr(Σ_B) (Tirer, Huang &
# Niles-Weed, "Perturbation analysis of neural collapse", ICML 2023).


def _centred_means(means: np.ndarray, counts: np.ndarray, mean: str) -> np.ndarray:
    return scatter_matrices(np.zeros((1, 1)), np.asarray(means, dtype=np.float64), counts, mean=mean)[1]


def _cosines(m: np.ndarray) -> np.ndarray | None:
    """Cosines between the centred class means over the pairs k < k'; None if a mean
    sits on the centre (no direction)."""
    norms = np.linalg.norm(m, axis=1)
    if len(m) < 2 or np.any(norms <= 0):
        return None
    unit = m / norms[:, None]
    return (unit @ unit.T)[np.triu_indices(len(m), 1)]


def nc2_from_moments(means: np.ndarray, counts: np.ndarray, *, mean: str = "global") -> dict[str, float]:
    """NC2 (convergence to a simplex equiangular tight frame) of the class means μ_k.

    Papyan, Han & Donoho 2020 (PNAS 117(40)), with M_k = μ_k − μ_G (`mean` chooses μ_G as
    in `scatter_matrices`):

    - `nc2_equinorm` = std_k ‖M_k‖ / mean_k ‖M_k‖ (their Figure 2; ddof 0);
    - `nc2_equiangularity` = std over pairs k < k' of cos(M_k, M_k') (their Figure 3);
    - `nc2_max_angle` = mean over pairs of |cos(M_k, M_k') + 1/(K − 1)| (their Figure 4:
      a simplex ETF has every cosine −1/(K − 1));
    - `nc2_etf_distance` = ‖ M Mᵀ/‖M Mᵀ‖_F − (I − 11ᵀ/K)/√(K − 1) ‖_F (Zhu et al., "A
      geometric analysis of neural collapse with unconstrained features", NeurIPS 2021).

    All are 0 at a simplex ETF, invariant to rotation and scale. With K = 2 (the spirals)
    the two centred means always point opposite ways (equiangularity and max-angle 0);
    their norms differ only by the class sizes (equinorm |n₁ − n₂| / (n₁ + n₂) with the
    global mean, 0 with `mean="class_means"`): NC2 says little with two classes. NaN
    with K < 2 or a class mean on μ_G.
    """
    m = _centred_means(means, counts, mean)
    k = len(m)
    nan = dict.fromkeys(("nc2_equinorm", "nc2_equiangularity", "nc2_max_angle", "nc2_etf_distance"),
                        float("nan"))
    cos = _cosines(m)
    if k < 2 or cos is None:
        return nan
    norms = np.linalg.norm(m, axis=1)
    gram = m @ m.T
    etf = (np.eye(k) - 1.0 / k) / np.sqrt(k - 1)
    return {"nc2_equinorm": float(norms.std() / norms.mean()),
            "nc2_equiangularity": float(cos.std()),
            "nc2_max_angle": float(np.mean(np.abs(cos + 1.0 / (k - 1)))),
            "nc2_etf_distance": float(np.linalg.norm(gram / np.linalg.norm(gram) - etf))}


def nc2(features: np.ndarray | LayerStats, labels: np.ndarray | None = None, *,
        mean: str = "global") -> dict[str, float]:
    """NC2 of a layer: how far its centred class means are from a simplex ETF.

    See `nc2_from_moments` for the four numbers (equinorm, equiangularity, max-angle,
    ETF distance; Papyan, Han & Donoho 2020, Figures 2–4; Zhu et al. 2021).

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features), or LayerStats
    labels : array-like of int, shape (n_samples,), optional
        Required unless `features` is a LayerStats.
    mean : {"global", "class_means"}, default "global"
        The centre μ_G, as in `nc1`.

    Returns
    -------
    dict
        {"nc2_equinorm", "nc2_equiangularity", "nc2_max_angle", "nc2_etf_distance"}:
        each ≥ 0, 0 at a simplex ETF; NaN with fewer than two classes.
    """
    st = _layer(features, labels)
    return nc2_from_moments(st.means, st.counts, mean=mean)


def nc3_self_duality(means: np.ndarray, counts: np.ndarray, weights: np.ndarray, *,
                     mean: str = "global") -> float:
    """NC3, self-duality: ‖ W/‖W‖_F − M/‖M‖_F ‖²_F.

    Papyan, Han & Donoho 2020, Figure 5: W (K, n_features) the last layer's classifier
    weights (row k scores class k), M (K, n_features) the centred class means μ_k − μ_G
    of its input (the penultimate features). 0 when the classifier aligns with the
    means up to scale; in [0, 4].

    Not in the tables: a run directory saves the classifier only inside checkpoint.pt
    (a torch file, which the numpy side does not read), so call this with the weights
    in hand (`model.logits.weight.detach().numpy()` for repflat's MLP) and the
    penultimate layer's class means (`layer_statistics(X, y).means`).

    Parameters
    ----------
    means : array-like, shape (K, n_features)
        The class means μ_k, in the order of W's rows.
    counts : array-like of int, shape (K,)
        Rows per class (for the global mean).
    weights : array-like, shape (K, n_features)
        The classifier's weights.
    mean : {"global", "class_means"}, default "global"

    Returns
    -------
    float
        The squared distance; NaN if either is all zero.
    """
    m = _centred_means(means, counts, mean)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != m.shape:
        raise expected("weights", f"shape {m.shape} (one row per class, as the means)", w.shape)
    nm, nw = np.linalg.norm(m), np.linalg.norm(w)
    if nm <= 0 or nw <= 0:
        return float("nan")
    return float(np.sum((w / nw - m / nm) ** 2))


def nc4_ncc_mismatch(features, labels, predictions) -> float:
    """NC4: the share of samples whose nearest class centre is not the network's prediction.

    mean_i 1[argmin_k ‖h_i − μ_k‖ ≠ ŷ_i]; Papyan, Han & Donoho 2020, Figure 7 (simplification to the nearest class centre
    rule): 0 when the classifier behaves as nearest-class-centre. μ_k are the class
    means of `features` by `labels` (K = the labels present, ascending; a prediction of
    a class absent from `labels` always mismatches).

    Not in the tables: a run directory saves the network's probabilities only for the
    2-D probe splits, not its predictions on the labelled splits; pass them here
    (`predictions` as labels (n,) or as scores/probabilities (n, K), argmax taken).

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
    labels : array-like of int, shape (n_samples,)
    predictions : array-like, shape (n_samples,) of int, or (n_samples, K) of scores

    Returns
    -------
    float
        The mismatch share, in [0, 1].
    """
    from repflat.analysis.inputs import check_inputs

    x = as_features(features)
    y = check_inputs(x, labels)
    x = np.asarray(x, dtype=np.float64)
    p = np.asarray(as_features(predictions, "predictions"))
    p = p.argmax(axis=1) if p.ndim == 2 else p
    if p.shape != y.shape:
        raise expected("predictions", f"one per sample ({len(y)})", p.shape)
    classes = np.unique(y)
    centres = np.stack([x[y == k].mean(0) for k in classes])
    d = (np.sum(x ** 2, 1)[:, None] - 2 * x @ centres.T + np.sum(centres ** 2, 1)[None])
    return float(np.mean(classes[d.argmin(1)] != p))


def cdnv_from_moments(variances: np.ndarray, means: np.ndarray) -> float:
    """Class-distance normalized variance averaged over pairs of classes:
    mean_{i≠j} (Var_i + Var_j) / (2 ‖μ_i − μ_j‖²), Var_k = E_{h∈k} ‖h − μ_k‖².

    Galanti, György & Hutter, "On the role of neural collapse in transfer learning",
    ICLR 2022, Definition 1 (the per-pair value, averaged over i ≠ j as in their figures).
    0 when every class collapses to its mean; scale-invariant. NaN with K < 2 or two
    coinciding class means.
    """
    variances, means = np.asarray(variances, dtype=np.float64), np.asarray(means, dtype=np.float64)
    k = len(means)
    if k < 2:
        return float("nan")
    i, j = np.triu_indices(k, 1)
    dist = np.sum((means[i] - means[j]) ** 2, axis=1)
    if np.any(dist <= 0):
        return float("nan")
    return float(np.mean((variances[i] + variances[j]) / (2 * dist)))


def class_variances(st: LayerStats) -> np.ndarray:
    """Var_k = E‖h − μ_k‖² of each class from its spectrum (Σσ² / n_k when centred, minus
    ‖μ_k‖² when not); 0 for a class of one row."""
    out = np.zeros(len(st.classes))
    for i, k in enumerate(st.classes.tolist()):
        s = st.spectra.get(k)
        if s is not None:
            out[i] = float(np.sum(np.asarray(s, dtype=np.float64) ** 2)) / st.counts[i]
            if not st.center:
                out[i] = max(out[i] - float(st.means[i] @ st.means[i]), 0.0)
    return out


def cdnv(features: np.ndarray | LayerStats, labels: np.ndarray | None = None) -> float:
    """CDNV of a layer: the class-distance normalized variance averaged over class pairs.

    mean_{i≠j} (Var_i + Var_j) / (2 ‖μ_i − μ_j‖²), Var_k = E‖h − μ_k‖² (Galanti, György
    & Hutter 2022; see `cdnv_from_moments`).

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features), or LayerStats (with spectra)
    labels : array-like of int, shape (n_samples,), optional
        Required unless `features` is a LayerStats.

    Returns
    -------
    float
        ≥ 0; 0 at full variability collapse; NaN with fewer than two classes.
    """
    if isinstance(features, LayerStats):
        st = features
    else:
        from repflat.analysis.spectra import layer_statistics

        st = layer_statistics(features, labels, pooled=False)
    return cdnv_from_moments(class_variances(st), st.means)
