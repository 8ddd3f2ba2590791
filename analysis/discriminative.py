"""Corollary 1's measures: class spread along and across the discriminative directions.

Corollary 1 (Verma et al. 2019, §3.1; PAPER.md, "What the argument needs"): at a
minimiser of the mixup loss with f differentiable at the representations, each class k
lies in h + ker Df(h). The directions it constrains are the *discriminative* ones, the
row space of the Jacobian of the (class-centred) logits w.r.t. the layer; the null
directions are free. So the statistic to test is the spread of class k along its
discriminative subspace D_k, relative to how far apart the classes are along it, and a
class collapsed to a point satisfies the corollary.

Notation (class k, n_k rows x_i, mean μ_k, covariance Σ_k = (1/n_k) Σ_i (x_i − μ_k)(x_i − μ_k)ᵀ):

- D_k: the span of the top m = min(K − 1, r) eigenvectors of G_k, the class's average
  outer product of the centred-logit Jacobian (repflat.capture.discriminative), V_k its
  orthonormal basis (n_features × m), P_k = V_k V_kᵀ;
- separation s_k = sqrt( (1/(K − 1)) Σ_{j≠k} ‖P_k (μ_j − μ_k)‖² ), the RMS distance to the
  other classes' means along D_k;
- along_spread_k = sqrt(tr(P_k Σ_k)) / s_k: the corollary predicts 0 at a minimiser;
- across_spread_k = sqrt(tr((I − P_k) Σ_k)) / s_k: left free by the corollary;
- along_share_k = tr(P_k Σ_k) / tr(Σ_k): how much of the class's variance the loss sees;
- collapsed_k = 1 if sqrt(tr Σ_k) / s_k < collapse_tol (small in every direction), else 0;
- sigma1_over_separation = σ₁ / (√n_k s_k) and sigma_rest_over_separation =
  Σ_{i≥2} σ_i / (√n_k s_k): the paper's §3.2 statistics (σ of the centred class matrix,
  σ_i / √n_k the RMS spread along principal direction i) made scale-free;
- jacobian_energy_share_k = Σ_{j≤m} λ_j(G_k) / tr G_k: 1 where the downstream map is
  affine, less where the discriminative directions turn across the class.

Every one of these is unchanged by the gauge h → c·h with the next layer's weights ÷ c
(Σ_k scales by c², s_k by c, G_k by 1/c² with the same eigenvectors). The layer's scale
and its downstream gain are not; their product is:

- layer_scale = sqrt( (1/n) Σ_i ‖x_i − μ‖² ), μ the mean of all rows;
- downstream_gain = sqrt(λ_max(Ḡ)), Ḡ = Σ_k (n_k / n) G_k: the RMS size of ∂z̃/∂h along
  its most sensitive direction (‖∂logits/∂h‖₂ in mean square);
- scale_gain_product = layer_scale · downstream_gain: how much the logits move across
  the layer's spread, the gauge-free combination.
"""
from __future__ import annotations

import numpy as np

from repflat.errors import expected

COLLAPSE_TOL = 0.05
"""A class whose whole spread is below this share of its separation counts as collapsed."""
CHUNK = 65536


def discriminative_basis(factor: np.ndarray, n_directions: int) -> np.ndarray:
    """An orthonormal basis (n_features, m) of the top `n_directions` directions of
    G ≈ factorᵀ factor, m = min(n_directions, rank).

    Parameters
    ----------
    factor : ndarray, shape (r, n_features)
        Rows √λ_j v_j (repflat's summaries), or any F with G = FᵀF.
    n_directions : int
        K − 1 for the corollary.

    Returns
    -------
    ndarray, shape (n_features, m)
        The right singular vectors of F with the largest singular values (non-zero ones).
    """
    factor = np.asarray(factor, dtype=np.float64)
    if factor.ndim != 2:
        raise expected("factor", "shape (r, n_features)", factor.shape)
    _, s, vt = np.linalg.svd(factor, full_matrices=False)
    keep = min(n_directions, int(np.sum(s > s[0] * 1e-12)) if len(s) and s[0] > 0 else 0)
    return vt[:keep].T


def _class_moments(features, labels: np.ndarray, classes: np.ndarray):
    """Class means (float64) and, per class, a function of a basis giving (along, total) sums."""
    n, d = features.shape
    K = len(classes)
    index = {int(c): i for i, c in enumerate(classes)}
    sums = np.zeros((K, d))
    counts = np.zeros(K, dtype=np.int64)
    for start in range(0, n, CHUNK):
        x = np.asarray(features[start:start + CHUNK], dtype=np.float64)
        y = labels[start:start + CHUNK]
        for c in np.unique(y):
            rows = x[y == c]
            sums[index[int(c)]] += rows.sum(axis=0)
            counts[index[int(c)]] += len(rows)
    return sums / np.maximum(counts, 1)[:, None], counts


def discriminative_geometry(features, labels, factors: np.ndarray, traces: np.ndarray, *,
                            spectra: dict | None = None, collapse_tol: float = COLLAPSE_TOL
                            ) -> tuple[dict[int, dict[str, float]], dict[str, float]]:
    """Corollary 1's measures (see the module docstring) of one layer.

    Parameters
    ----------
    features : array-like, shape (n_samples, n_features)
        The layer's rows (numpy, memmap, list); read in chunks.
    labels : array-like of int, shape (n_samples,)
        Class labels 0 … K − 1 (the summaries are indexed by label).
    factors : ndarray, shape (K, r, n_features)
        Per class, F_k with G_k ≈ F_kᵀ F_k (repflat.rundir.features.Discriminative).
    traces : ndarray, shape (K,)
        tr G_k.
    spectra : dict {label: σ descending}, optional
        The classes' centred spectra, for the σ / separation statistics.
    collapse_tol : float
        The `collapsed` threshold on sqrt(tr Σ_k) / s_k.

    Returns
    -------
    per_class : dict {label: {metric: value}}
        Every metric of the module docstring that is defined (a class with s_k = 0 or
        fewer than 2 rows has none but its energy share).
    layer : dict {metric: value}
        layer_scale, downstream_gain, scale_gain_product.
    """
    y = np.asarray(labels)
    factors = np.asarray(factors, dtype=np.float64)
    K, _, d = factors.shape
    if features.shape[1] != d:
        raise expected("discriminative summary", f"{features.shape[1]} features as the layer has", d)
    classes = np.unique(y)
    if len(classes) and (classes.min() < 0 or classes.max() >= K):
        raise expected("labels", f"labels 0..{K - 1} as the summary has", f"{classes.min()}..{classes.max()}")
    means, counts = _class_moments(features, y, classes)
    m = max(K - 1, 1)
    bases = {int(c): discriminative_basis(factors[int(c)], m) for c in classes}
    along = np.zeros(len(classes))
    total = np.zeros(len(classes))
    for start in range(0, len(y), CHUNK):
        x = np.asarray(features[start:start + CHUNK], dtype=np.float64)
        yc = y[start:start + CHUNK]
        for i, c in enumerate(classes):
            rows = x[yc == c] - means[i]
            if len(rows):
                along[i] += np.sum((rows @ bases[int(c)]) ** 2)
                total[i] += np.sum(rows ** 2)
    per_class: dict[int, dict[str, float]] = {}
    for i, c in enumerate(classes):
        c = int(c)
        lam = np.sum(factors[c] ** 2, axis=1)
        row = {"jacobian_energy_share": float(np.sort(lam)[::-1][:m].sum() / traces[c])
               if traces[c] > 0 else float("nan")}
        others = [j for j in range(len(classes)) if j != i]
        V = bases[c]
        if counts[i] >= 2 and others and V.shape[1]:
            gaps = (means[others] - means[i]) @ V
            sep = float(np.sqrt(np.mean(np.sum(gaps ** 2, axis=1))))
            n_k = counts[i]
            var_along, var_total = along[i] / n_k, total[i] / n_k
            # a separation at round-off of the layer's own numbers is none: no ratio then
            if sep > 1e-9 * (np.sqrt(var_total) + np.abs(means).max()):
                var_across = max(var_total - var_along, 0.0)
                row |= {"separation": sep,
                        "along_spread": float(np.sqrt(var_along) / sep),
                        "across_spread": float(np.sqrt(var_across) / sep),
                        "along_share": float(var_along / var_total) if var_total > 0 else float("nan"),
                        "collapsed": float(np.sqrt(var_total) / sep < collapse_tol)}
                if spectra is not None and c in spectra and len(spectra[c]):
                    s = np.asarray(spectra[c], dtype=np.float64) / (np.sqrt(n_k) * sep)
                    row |= {"sigma1_over_separation": float(s[0]),
                            "sigma_rest_over_separation": float(np.sum(s[1:]))}
        per_class[c] = {k: v for k, v in row.items() if np.isfinite(v)}
    n = counts.sum()
    pooled_mean = (counts[:, None] * means).sum(axis=0) / max(n, 1)
    spread = float(np.sqrt((total.sum() + np.sum(counts * np.sum((means - pooled_mean) ** 2, axis=1)))
                           / max(n, 1)))
    weights = np.zeros(K)
    weights[classes] = counts / max(n, 1)
    stacked = np.concatenate([np.sqrt(w) * factors[k] for k, w in enumerate(weights) if w > 0]) \
        if n else np.zeros((1, d))
    gain = float(np.linalg.norm(stacked, 2)) if stacked.size else 0.0
    layer = {"layer_scale": spread, "downstream_gain": gain, "scale_gain_product": spread * gain}
    return per_class, layer
