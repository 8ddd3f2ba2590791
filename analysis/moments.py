"""Mergeable first and second moments of a set of rows, and spectra from them.

`Moments` holds, in float64, what a class's spectrum, mean and scatter need:

    n                       number of rows
    c                       a shift (a provisional mean), shape (n_features,)
    s = Σ_i (x_i − c)       shifted sum
    G = Σ_i (x_i − c)(x_i − c)ᵀ   shifted Gram matrix, shape (n_features, n_features)

from which mean μ = c + s/n and centred scatter S = Σ_i (x_i − μ)(x_i − μ)ᵀ = G − s sᵀ/n.
Chunks sharing a shift combine by adding n, s and G, so a feature set is read once,
in chunks of any size, in any order. Moments with different shifts (other processes,
other ranks) combine by Chan, Golub & LeVeque's pairwise update, "Updating formulae
and a pairwise algorithm for computing sample variances" (1979):

    S = S_a + S_b + (n_a n_b / n) (μ_b − μ_a)(μ_b − μ_a)ᵀ.

Why the shift: S = Σ x xᵀ − n μ μᵀ loses everything to cancellation when the mean is
large against the spread (|μ|² / σ_min² ≫ 1/eps); with c near μ (the first chunk's mean)
the subtracted term s sᵀ/n is tiny.

Why float64 and what it costs: eigenvalues of a Gram matrix are the squared singular
values, so the condition number is squared. Eigenvalues of a float64 Gram carry an
absolute error of about eps₆₄·σ₁² ≈ 1e-16·σ₁², i.e. an error of at most ~1e-8·σ₁ on
each singular value: every singular value is accurate to ~1e-7·σ₁ or better, which
float32 input cannot beat anyway (its own round-off is ~6e-8 relative). Products of
float16/float32 values are exact in float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repflat.analysis.inputs import as_features


@dataclass
class Moments:
    """Count, shift, shifted sum and shifted Gram of a set of rows (see the module docstring)."""

    count: int
    shift: np.ndarray
    total: np.ndarray
    gram: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, shift: np.ndarray | None = None) -> Moments:
        """Moments of `rows` (n_samples, n_features); the shift defaults to their mean.

        With the exact mean as shift this is the two-pass centred Gram, the most
        accurate form; a stream passes its first chunk's shift to later chunks.
        """
        rows = np.asarray(as_features(rows, "rows"), dtype=np.float64)
        if shift is None:
            shift = rows.mean(axis=0) if len(rows) else np.zeros(rows.shape[1])
        y = rows - shift
        return cls(len(rows), np.asarray(shift, dtype=np.float64), y.sum(axis=0), y.T @ y)

    def add(self, rows: np.ndarray) -> None:
        """Accumulate more rows in place, with this object's shift."""
        y = np.asarray(as_features(rows, "rows"), dtype=np.float64) - self.shift
        self.count += len(y)
        self.total += y.sum(axis=0)
        self.gram += y.T @ y

    @property
    def mean(self) -> np.ndarray:
        return self.shift + self.total / self.count

    def scatter(self, center: bool = True) -> np.ndarray:
        """Σ_i (x_i − μ)(x_i − μ)ᵀ (centred), or Σ_i x_i x_iᵀ (center=False).

        The uncentred form is built as S + n μ μᵀ, a sum of two positive semi-definite
        terms, rather than by undoing the shift term by term.
        """
        s = self.gram - np.outer(self.total, self.total) / self.count
        if not center:
            s = s + self.count * np.outer(self.mean, self.mean)
        return s

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of rows (Chan et al.'s pairwise update); exact in real arithmetic."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        if np.array_equal(self.shift, other.shift):  # chunks of one stream: plain sums
            return Moments(self.count + other.count, self.shift, self.total + other.total,
                           self.gram + other.gram)
        n = self.count + other.count
        delta = other.mean - self.mean
        scatter = self.scatter() + other.scatter() + (self.count * other.count / n) * np.outer(delta, delta)
        mean = self.mean + delta * (other.count / n)
        return Moments(n, mean, np.zeros_like(mean), scatter)


def psd_singular_values(m: np.ndarray, rank: int) -> np.ndarray:
    """Singular values (descending) of any X with XᵀX = m (or XXᵀ = m): √eig(m), top `rank`.

    `m` is symmetric positive semi-definite up to round-off; eigenvalues a hair below
    zero are round-off and read as 0. `rank` is the number of singular values X has
    (min(n_samples, n_features)); values past the rank the data can reach are zeroed by
    the caller, not guessed here.
    """
    lam = np.linalg.eigvalsh(m)[::-1][:rank]
    return np.sqrt(np.clip(lam, 0.0, None))


DENSE_MAX_FEATURES = 2048
"""Above this width a within-class scatter is kept as its factor when the layer has
fewer rows than features: 2048² float64 is 32 MiB, 30,000² would be 7 GB."""


@dataclass(frozen=True)
class Factor:
    """A scatter matrix S = Fᵀ F kept as its factor F (n_rows, n_features).

    For layers wider than they have rows, where S itself (n_features² values) would not
    fit in memory while F is no larger than the features. `scatter_trace` and
    `scatter_quadratic` read either form."""

    rows: np.ndarray

    def dense(self) -> np.ndarray:
        return self.rows.T @ self.rows


def scatter_trace(s: np.ndarray | Factor) -> float:
    """Tr(S) of a dense scatter or a Factor (Tr FᵀF = ‖F‖²_F)."""
    return float(np.sum(s.rows ** 2)) if isinstance(s, Factor) else float(np.trace(s))


def scatter_quadratic(s: np.ndarray | Factor, v: np.ndarray) -> np.ndarray:
    """v_j S v_jᵀ for each row v_j of `v` (r, n_features), without forming S from a Factor."""
    if isinstance(s, Factor):
        return np.sum((s.rows @ v.T) ** 2, axis=0)
    return np.einsum("jd,de,je->j", v, s, v)


def factored(n_rows: int, n_features: int) -> bool:
    """Whether a layer's within-class scatter is kept as a Factor (see DENSE_MAX_FEATURES)."""
    return n_features > DENSE_MAX_FEATURES and n_rows < n_features


@dataclass(frozen=True)
class LayerStats:
    """What the spectra and the layer-level metrics of one layer's features need.

    `within` is Σ_k Σ_{i∈k} (x_i − μ_k)(x_i − μ_k)ᵀ, a sum (not an average), so layers
    of different sizes merge by adding. `spectra` holds the classes with at least two
    rows (a single row has no spread); every class present counts in `classes`.
    Made by `repflat.analysis.layer_statistics`; `nc1` and `within_between_ratio` take
    one in place of features and labels.

    Parameters
    ----------
    classes : ndarray of int, shape (K,)
        The labels present, ascending.
    counts : ndarray of int, shape (K,)
        The rows of each class.
    means : ndarray of float64, shape (K, n_features)
        The mean row μ_k of each class.
    center : bool
        Whether `spectra` and `pooled` are of centred rows.
    spectra : dict {int: ndarray of float64, shape (min(n_k, n_features),)}
        σ of each class of at least two rows, descending; empty if not asked for.
    pooled : ndarray of float64, shape (min(n_samples, n_features),), or None
        σ of all rows together (the control); None if not asked for.
    within : ndarray of float64, shape (n_features, n_features), or Factor, or None
        The within-class scatter (a sum), or its factor F (S = Fᵀ F) for layers wider
        than they have rows (see `factored`); None if not asked for.
    """

    classes: np.ndarray              # (K,) labels present, ascending
    counts: np.ndarray               # (K,) rows per class
    means: np.ndarray                # (K, n_features) float64
    center: bool                     # whether `spectra` and `pooled` are of centred rows
    spectra: dict[int, np.ndarray]   # class -> σ, descending (empty if not asked for)
    pooled: np.ndarray | None        # σ of all rows together (the control)
    within: np.ndarray | Factor | None  # (n_features, n_features) within-class scatter,
                                        # or its factor for wide layers (see `factored`)

    @property
    def n_features(self) -> int:
        return self.means.shape[1]


# ---------------------------------------------------------------- array-likes in

RELATIVE_ACCURACY = 1e-7
"""Singular values below this fraction of σ₁ are round-off on one of the two paths: a
float64 Gram matrix's eigenvalues carry an error of about eps·σ₁², i.e. up to ~1e-8·σ₁ on
each singular value (more once summed over chunks), and float32 features are themselves
rounded at ~6e-8. Both paths read them as exact zeros, so every metric (effective rank,
RankMe, participation ratio, numerical rank, shares) is the same whichever path ran."""
CENTRING_ACCURACY = 64 * np.finfo(np.float64).eps
"""Centring n rows of norm ‖μ‖ leaves round-off of about eps·√n·‖μ‖: below this times
√n·‖μ‖ a centred class is its mean, whatever its σ₁ says (identical rows: rank 0)."""


def clean_spectrum(sigma: np.ndarray, n: int, center: bool,
                   mean: np.ndarray | None = None) -> np.ndarray:
    """σ (descending) with round-off set to exact zeros: past the reachable rank (n
    centred rows span at most n − 1 dimensions), below RELATIVE_ACCURACY · σ₁, and, for a
    centred class, below CENTRING_ACCURACY · √n · ‖mean‖ (what centring subtracted)."""
    if center and n <= len(sigma):
        sigma[n - 1:] = 0.0
    if not len(sigma):
        return sigma
    floor = RELATIVE_ACCURACY * sigma[0]
    if center and mean is not None:
        floor = max(floor, CENTRING_ACCURACY * np.sqrt(n) * float(np.linalg.norm(mean)))
    sigma[sigma < floor] = 0.0
    return sigma
