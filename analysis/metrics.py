"""Flattening metrics: pure functions of a spectrum σ₁ ≥ … ≥ σ_r ≥ 0 (1-D array).

"Flattening" (Verma et al. 2019, §3) means fewer directions of significant variance
per class; each metric below measures that from one class's spectrum.
"""
from __future__ import annotations

import numpy as np


def largest_singular_value(s: np.ndarray) -> float:
    """σ₁, the spread along the class's main direction (§3.2's first statistic)."""
    return float(s[0]) if len(s) else 0.0


def sum_other_singular_values(s: np.ndarray) -> float:
    """Σ_{i≥2} σ_i, the spread outside the main direction (§3.2's second statistic)."""
    return float(np.sum(s[1:]))


def effective_rank(s: np.ndarray) -> float:
    """exp(H(p)) with p_i = σ_i / Σ_j σ_j and H the Shannon entropy (0·log 0 = 0).

    Roy & Vetterli, "The effective rank: a measure of effective dimensionality",
    EUSIPCO 2007. Equals m for m equal non-zero singular values; 0 for an all-zero
    spectrum (a collapsed class).
    """
    total = float(np.sum(s))
    if total <= 0:
        return 0.0
    p = np.asarray(s, dtype=np.float64) / total
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def numerical_rank(s: np.ndarray, rtol: float) -> int:
    """#{i : σ_i > rtol · σ₁}: the directions holding more than a fraction rtol of σ₁."""
    if not len(s) or s[0] <= 0:
        return 0
    return int(np.sum(s > rtol * s[0]))


def theory_dimension(n_features: int, n_classes: int) -> int:
    """dim(H) − K + 1: Corollary 1's dimension of each class's affine subspace.

    When dim(H) > K − 1, a minimiser of the manifold mixup objective puts each class's
    training representations on a (dim(H) − K + 1)-dimensional affine subspace (Verma
    et al. 2019, §3.1; the proof assumes loss(u, u) = 0). Clipped at 0.
    """
    return max(n_features - n_classes + 1, 0)


def residual_variance_share(s: np.ndarray, k: int) -> float:
    """Σ_{i>k} σ_i² / Σ_i σ_i²: the share of variance outside the best k-dim subspace.

    With a centred spectrum and k = theory_dimension, this is 0 exactly when the class
    lies on a k-dimensional affine subspace, as Corollary 1 predicts (Eckart–Young).
    """
    power = np.asarray(s, dtype=np.float64) ** 2
    total = float(power.sum())
    return float(power[k:].sum() / total) if total > 0 else 0.0
