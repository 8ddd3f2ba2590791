"""Singular value spectra of class-conditional representations.

The *class-conditional representation* of class k at a layer is the matrix
X_k ∈ R^{n_k × d} of the rows of that layer's features whose label is k. Its
*spectrum* is σ₁ ≥ σ₂ ≥ … ≥ σ_r (r = min(n_k, d)) of

    X_k − 1 μ_kᵀ   (centred, the default: the spread of the class around its mean)
    X_k            (uncentred, `center=False`: the mean direction counts too)

Singular values are not divided by √n_k, as in the paper's tables (they grow with
the number of samples; compare runs with equal class sizes).
"""
from __future__ import annotations

import numpy as np

from repflat.errors import UserError, expected


def singular_values(x: np.ndarray, *, center: bool = True) -> np.ndarray:
    """Singular values, descending, of `x` (n_samples, n_features), centred by default.

    Computed by LAPACK's SVD in float64 whatever the input dtype, so small singular
    values are not lost to float32 round-off.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise expected("features", "a 2-D array (n_samples, n_features)", f"shape {x.shape}")
    if not np.isfinite(x).all():
        raise UserError("features: expected finite values, got NaN or Inf")
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    return np.linalg.svd(x, compute_uv=False)


def class_spectra(features: np.ndarray, labels: np.ndarray, *,
                  center: bool = True) -> dict[int, np.ndarray]:
    """Spectrum of each class's rows: {class: σ (descending)}, classes in ascending order."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(features):
        raise expected("labels", f"a 1-D array of {len(features)} class labels",
                       f"shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise expected("labels", "integer class labels", str(labels.dtype))
    return {int(k): singular_values(features[labels == k], center=center)
            for k in np.unique(labels)}
