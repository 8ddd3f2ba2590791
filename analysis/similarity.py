"""Similarity of two feature sets of the same samples: "is it different?" beside "is it
flatter?".

X (n_samples, p1) and Y (n_samples, p2) are two representations of the same n inputs,
row i of each the same sample (two layers, two arms, two seeds). Four measures:

- `linear_cka`: centred kernel alignment with a linear kernel, biased (Kornblith et al.
  2019) or debiased (the unbiased HSIC estimator of Song et al. 2012, as Nguyen, Raghu &
  Kornblith 2021 use it). 1 for identical inputs, invariant to rotations and isotropic
  scaling of either side (not to general invertible maps).
- `procrustes_distance` and `angular_distance`: Williams, Kunz, Kornblith & Linderman
  2021's generalized shape metrics with α = 1 (orthogonal Procrustes): after centring and
  scaling each side to unit Frobenius norm, min over orthogonal Q of ‖X − YQ‖_F and
  arccos of the best alignment. 0 for identical inputs; true metrics (triangle
  inequality), invariant to rotations, translations and isotropic scaling.
- `rdm_correlation`: representational similarity analysis (Kriegeskorte, Mur &
  Bandettini 2008): Spearman correlation of the upper triangles of the two
  representational dissimilarity matrices (correlation distance by default).

Memory. Linear CKA (both estimators) and the shape distances need only sums over rows:
XᵀY, XᵀX, YᵀY, the column sums and a few row-norm sums (`CrossMoments`), accumulated
chunk by chunk in float64, so feature sets larger than memory stream through
(`chunk_rows`), at p1·p2 + p1² + p2² floats. RSA needs the n × n dissimilarities, so all
rows at once: the pipeline gives it a fixed subset of rows (`RDM_MAX_ROWS`).

A maintained library was considered for each: netrep (shape metrics) and thingsvision's
CKA are built on torch or a full n × n Gram, neither streams, and rsatoolbox (RDMs)
would bring scikit-image, h5py and imageio for one Spearman of two `pdist`s, which scipy
gives here directly. The tests check every measure against a textbook n × n version,
closed forms and its invariances.
"""
from __future__ import annotations

import numpy as np

from repflat.errors import expected
from repflat.analysis.inputs import as_features

CHUNK_ROWS = 4096
RDM_MAX_ROWS = 500
"""Rows the pipeline gives RSA: its dissimilarities are n(n − 1)/2 numbers (124,750 at
500, plenty for a rank correlation), and ranking them costs ~1.7 s a pair and layer at
2,000 rows, which made RSA most of a sweep's analysis."""


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_features(x, "x"), as_features(y, "y")
    for name, a in (("x", x), ("y", y)):
        if a.ndim != 2 or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise expected(name, "a 2-D array of numbers (n_samples, n_features)", f"shape {a.shape}, {a.dtype}")
    if len(x) != len(y):
        raise expected("y", f"the same samples as x ({len(x)} rows)", f"{len(y)} rows")
    return x, y


class CrossMoments:
    """Sums over the rows of two feature sets, enough for linear CKA (biased and
    debiased) and the Procrustes / angular shape distances; `update` with row chunks of
    both (same samples, same order), `merge` across processes.

    With a_i = ‖x_i‖², b_i = ‖y_i‖²: n, s_x = Σ x_i, s_y = Σ y_i, XᵀY, XᵀX, YᵀY,
    Σ a_i, Σ b_i, Σ a_i², Σ b_i², Σ a_i b_i, Σ a_i x_i, Σ b_i y_i, Σ a_i y_i, Σ b_i x_i
    (float64). The debiased estimator's n × n terms are these sums (see `_hsic_unbiased`).
    """

    def __init__(self, p1: int, p2: int):
        self.n = 0
        self.sx, self.sy = np.zeros(p1), np.zeros(p2)
        self.xy, self.xx, self.yy = np.zeros((p1, p2)), np.zeros((p1, p1)), np.zeros((p2, p2))
        self.a = self.b = self.aa = self.bb = self.ab = 0.0
        self.ax, self.by = np.zeros(p1), np.zeros(p2)
        self.ay, self.bx = np.zeros(p2), np.zeros(p1)

    def update(self, x: np.ndarray, y: np.ndarray) -> "CrossMoments":
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        a, b = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        self.n += len(x)
        self.sx += x.sum(0)
        self.sy += y.sum(0)
        self.xy += x.T @ y
        self.xx += x.T @ x
        self.yy += y.T @ y
        self.a += a.sum()
        self.b += b.sum()
        self.aa += a @ a
        self.bb += b @ b
        self.ab += a @ b
        self.ax += a @ x
        self.by += b @ y
        self.ay += a @ y
        self.bx += b @ x
        return self

    def merge(self, other: "CrossMoments") -> "CrossMoments":
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)
        return self

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """X̃ᵀỸ, X̃ᵀX̃, ỸᵀỸ of the column-centred features (X̃ = X − 1 μ_xᵀ)."""
        mx, my = self.sx / self.n, self.sy / self.n
        return (self.xy - self.n * np.outer(mx, my), self.xx - self.n * np.outer(mx, mx),
                self.yy - self.n * np.outer(my, my))


def cross_moments(x, y, *, chunk_rows: int = CHUNK_ROWS) -> CrossMoments:
    """`CrossMoments` of x (n_samples, p1) and y (n_samples, p2), read `chunk_rows` rows at
    a time (a memmap is never loaded whole)."""
    x, y = _pair(x, y)
    if chunk_rows < 1:
        raise expected("chunk_rows", "an integer >= 1", chunk_rows)
    acc = CrossMoments(x.shape[1], y.shape[1])
    for start in range(0, len(x), chunk_rows):
        acc.update(x[start:start + chunk_rows], y[start:start + chunk_rows])
    return acc


def _frobenius_sq(m: np.ndarray) -> float:
    return float(np.sum(m * m))


def _hsic_unbiased(tr_kl: float, sum_k: float, sum_l: float, kl1: float, n: int) -> float:
    """Song et al. 2012, Theorem 2: HSIC₁ = [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2))
    − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)), K̃, L̃ the Gram matrices with their diagonal zeroed."""
    return (tr_kl + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * kl1) / (n * (n - 3))


def _debiased_terms(m: CrossMoments, which: str) -> tuple[float, float, float, float]:
    """tr(K̃L̃), 1ᵀK̃1, 1ᵀL̃1, 1ᵀK̃L̃1 for K = XXᵀ, L = YYᵀ (or both X, or both Y) from the
    row sums: with K̃ = K − diag(a), (K̃1)_i = x_i·s_x − a_i, so
    1ᵀK̃L̃1 = s_xᵀ XᵀY s_y − (Σ a_i y_i)·s_y − (Σ b_i x_i)·s_x + Σ a_i b_i and
    tr(K̃L̃) = ‖XᵀY‖²_F − Σ a_i b_i."""
    if which == "xy":
        cross, s1, s2, c1, c2, d = m.xy, m.sx, m.sy, m.ay, m.bx, m.ab
        sum1, sum2 = _frobenius_sq(m.sx) - m.a, _frobenius_sq(m.sy) - m.b
        kl1 = float(s1 @ cross @ s2 - c1 @ s2 - c2 @ s1 + d)
    else:
        cross, s, c, d, diag = ((m.xx, m.sx, m.ax, m.aa, m.a) if which == "xx"
                                else (m.yy, m.sy, m.by, m.bb, m.b))
        sum1 = sum2 = _frobenius_sq(s) - diag
        kl1 = float(s @ cross @ s - 2 * c @ s + d)
    return _frobenius_sq(cross) - d, sum1, sum2, kl1


def cka_from_moments(m: CrossMoments, *, debiased: bool = False) -> float:
    """Linear CKA from `CrossMoments` (see `linear_cka`); NaN where undefined."""
    if debiased:
        if m.n < 4:
            return float("nan")
        xy, xx, yy = (_hsic_unbiased(*_debiased_terms(m, w), m.n) for w in ("xy", "xx", "yy"))
        return xy / np.sqrt(xx * yy) if xx > 0 and yy > 0 else float("nan")
    xy, xx, yy = m.centred()
    norm = np.sqrt(_frobenius_sq(xx) * _frobenius_sq(yy))
    return _frobenius_sq(xy) / norm if norm > 0 else float("nan")


def linear_cka(x, y, *, debiased: bool = False, chunk_rows: int = CHUNK_ROWS) -> float:
    """Linear centred kernel alignment of two feature sets of the same samples.

    Biased (Kornblith, Norouzi, Lee & Hinton, "Similarity of neural network
    representations revisited", ICML 2019, Eq. 5 with a linear kernel):

        CKA = ‖X̃ᵀỸ‖²_F / (‖X̃ᵀX̃‖_F ‖ỸᵀỸ‖_F),   X̃, Ỹ column-centred.

    Debiased: the same ratio of HSIC₁, the unbiased estimator of HSIC (Song, Smola,
    Gretton, Bedo & Borgwardt, "Feature selection via dependence maximization", JMLR 13,
    2012, Theorem 2), on the linear Gram matrices K = XXᵀ, L = YYᵀ, as Nguyen, Raghu &
    Kornblith ("Do wide and deep networks learn the same things?", ICLR 2021) use it. The
    biased value of independent data is far from 0 when p is not ≪ n; the debiased one is
    ≈ 0 (it can be slightly negative) and is the one to compare across widths.

    Both are computed from sums over rows (`CrossMoments`), `chunk_rows` rows at a time,
    so memory holds p1·p2 + p1² + p2² floats, never n × n: a memmap streams through.
    Invariant to orthogonal transforms and isotropic scaling of either side; 1 for
    identical inputs.

    Parameters
    ----------
    x : array-like, shape (n_samples, p1)
    y : array-like, shape (n_samples, p2)
        The same samples in the same order (checked only for the count).
    debiased : bool, default False
        HSIC₁ (unbiased) instead of the biased HSIC.
    chunk_rows : int, default 4096
        Rows read at a time.

    Returns
    -------
    float
        CKA, in [0, 1] when biased; NaN when a side has no variance (or n < 4, debiased).

    Raises
    ------
    repflat.errors.UserError
        If either is not a 2-D numeric array or their row counts differ.
    """
    return cka_from_moments(cross_moments(x, y, chunk_rows=chunk_rows), debiased=debiased)


def shape_cosine(m: CrossMoments) -> float:
    """‖X̃ᵀỸ‖_* / (‖X̃‖_F ‖Ỹ‖_F): the best alignment over orthogonal maps of the centred,
    unit-norm sets (zero-padding the narrower side changes no singular value)."""
    xy, xx, yy = m.centred()
    norm = np.sqrt(max(np.trace(xx), 0.0) * max(np.trace(yy), 0.0))
    if norm <= 0:
        return float("nan")
    return float(min(np.linalg.svd(xy, compute_uv=False).sum() / norm, 1.0))


def procrustes_from_cosine(c: float) -> float:
    """√(2 − 2c), c = ‖X̂ᵀŶ‖_* (`shape_cosine`); NaN stays NaN."""
    return float(np.sqrt(max(2.0 - 2.0 * c, 0.0))) if np.isfinite(c) else c


def angular_from_cosine(c: float) -> float:
    """arccos c, c = ‖X̂ᵀŶ‖_* (`shape_cosine`) clipped to [−1, 1]; NaN stays NaN."""
    return float(np.arccos(np.clip(c, -1.0, 1.0))) if np.isfinite(c) else c


def procrustes_distance(x, y, *, chunk_rows: int = CHUNK_ROWS) -> float:
    """Orthogonal Procrustes shape distance min_Q ‖X̂ − ŶQ‖_F = √(2 − 2 ‖X̂ᵀŶ‖_*).

    Williams, Kunz, Kornblith & Linderman, "Generalized shape metrics on neural
    representations", NeurIPS 2021 (α = 1, no whitening): X̂, Ŷ the column-centred sets
    scaled to unit Frobenius norm, Q over orthogonal maps (the narrower side zero-padded),
    ‖·‖_* the nuclear norm (Schönemann 1966's solution). A metric in [0, 2]; 0 for
    identical inputs, invariant to rotation, translation and isotropic scaling. From
    sums over rows, streamed as `linear_cka`.

    Parameters
    ----------
    x : array-like, shape (n_samples, p1)
    y : array-like, shape (n_samples, p2)
        The same samples in the same order.
    chunk_rows : int, default 4096

    Returns
    -------
    float
        The distance; NaN when a side has no variance.
    """
    return procrustes_from_cosine(shape_cosine(cross_moments(x, y, chunk_rows=chunk_rows)))


def angular_distance(x, y, *, chunk_rows: int = CHUNK_ROWS) -> float:
    """Angular shape distance arccos ‖X̂ᵀŶ‖_*, in radians, in [0, π/2].

    Williams et al. 2021 (as `procrustes_distance`): the angle between the centred,
    unit-norm sets after the best orthogonal alignment; a metric on shapes, 0 for
    identical inputs, invariant to rotation, translation and isotropic scaling.

    Parameters
    ----------
    x : array-like, shape (n_samples, p1)
    y : array-like, shape (n_samples, p2)
    chunk_rows : int, default 4096

    Returns
    -------
    float
        The angle; NaN when a side has no variance.
    """
    return angular_from_cosine(shape_cosine(cross_moments(x, y, chunk_rows=chunk_rows)))


def rdm(x, *, metric: str = "correlation") -> np.ndarray:
    """The upper triangle (condensed, as `scipy.spatial.distance.pdist`) of the
    representational dissimilarity matrix of the rows of x (n_samples, n_features):
    1 − Pearson correlation between rows by default (Kriegeskorte et al. 2008), or any
    pdist metric ("euclidean", "cosine", …). Needs all rows: n(n − 1)/2 numbers."""
    from scipy.spatial.distance import pdist

    x = np.asarray(as_features(x, "x"), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant row: NaN, handled below
        return pdist(x, metric=metric)


def rdm_correlation(x, y, *, metric: str = "correlation", method: str = "spearman") -> float:
    """RSA: the correlation of two representational dissimilarity matrices.

    Kriegeskorte, Mur & Bandettini, "Representational similarity analysis – connecting
    the branches of systems neuroscience", Front. Syst. Neurosci. 2, 2008: the RDMs of
    X and Y (`rdm`, correlation distance by default) compared by the Spearman rank
    correlation of their upper triangles (rsatoolbox's "spearman"; `method="pearson"`
    for Pearson). 1 for identical inputs; invariant to any transform that keeps each
    RDM's order: with the euclidean distance, rotation, translation and isotropic
    scaling; with the correlation distance (each row centred across its own features),
    scaling, but not rotation of the feature space. Needs all n rows at once (n(n − 1)/2 dissimilarities); pairs where a row
    is constant (correlation distance undefined) are left out.

    Parameters
    ----------
    x : array-like, shape (n_samples, p1)
    y : array-like, shape (n_samples, p2)
        The same samples in the same order.
    metric : str, default "correlation"
        The dissimilarity (any `scipy.spatial.distance.pdist` metric).
    method : {"spearman", "pearson"}, default "spearman"

    Returns
    -------
    float
        The correlation, in [−1, 1]; NaN with fewer than 3 rows or a constant RDM.
    """
    from scipy import stats

    x, y = _pair(x, y)
    if method not in ("spearman", "pearson"):
        raise expected("method", "spearman or pearson", method)
    if len(x) < 3:
        return float("nan")
    dx, dy = rdm(x, metric=metric), rdm(y, metric=metric)
    ok = np.isfinite(dx) & np.isfinite(dy)
    dx, dy = dx[ok], dy[ok]
    if len(dx) < 2 or np.ptp(dx) == 0 or np.ptp(dy) == 0:
        return float("nan")
    test = stats.spearmanr if method == "spearman" else stats.pearsonr
    return float(test(dx, dy)[0])
