"""Intrinsic dimension per class (repflat.analysis.intrinsic) on data of known dimension:
a plane and a circle embedded in 10-D, and its failure modes handled as documented."""
from __future__ import annotations

import numpy as np
import pytest

from repflat.analysis import intrinsic as I


def skdim_id():
    """scikit-dimension's estimators, the reference (the test extra installs it)."""
    return pytest.importorskip("skdim.id", reason="scikit-dimension (the reference) is not installed")


def _embed(points, d=10, seed=0):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, points.shape[1])))[0]
    return points @ basis.T + rng.normal(size=d)


def _plane(n=800, seed=0):
    return _embed(np.random.default_rng(seed).uniform(-1, 1, size=(n, 2)), seed=seed)


def _circle(n=800, seed=0):
    t = np.random.default_rng(seed).uniform(0, 2 * np.pi, n)
    return _embed(np.c_[np.cos(t), np.sin(t)], seed=seed)


def test_a_plane_in_10d_has_dimension_two_by_both():
    x = _plane()
    assert I.twonn_dimension(x) == pytest.approx(2.0, abs=0.25)
    assert I.lpca_dimension(x) == 2


def test_a_circle_is_one_dimensional_locally_and_two_linearly():
    """TwoNN sees the curve (1); global PCA the plane it spans (2): the nonlinear and
    the linear counts disagree exactly where the data curve."""
    x = _circle()
    assert I.twonn_dimension(x) == pytest.approx(1.0, abs=0.15)
    assert I.lpca_dimension(x) == 2


def test_duplicates_are_dropped_and_too_few_rows_give_nan():
    x = _plane(n=300)
    assert I.twonn_dimension(np.vstack([x, x[:100]])) == pytest.approx(I.twonn_dimension(x))
    assert np.isnan(I.twonn_dimension(np.repeat(x[:5], 20, axis=0)))  # 5 distinct rows
    assert np.isnan(I.lpca_dimension(x[:I.MIN_ROWS - 1]))


def test_lpca_depends_on_its_threshold():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)) * np.array([1.0, 0.5, 0.3, 0.1, 0.05, 0.01])
    # eigenvalues ∝ 1, .25, .09, .01, ...: α = 0.05 keeps 3, α = 0.005 keeps 4
    assert I.lpca_dimension(x) == 3
    assert I.lpca_dimension(x, alpha=0.005) == 4


def test_per_class_dimensions_and_the_row_cap():
    x = np.vstack([_plane(n=400, seed=2), _circle(n=400, seed=3)])
    y = np.repeat([0, 1], 400)
    got = I.class_intrinsic_dimensions(x, y)
    assert got[0]["lpca_dimension"] == 2 and got[1]["twonn_dimension"] == pytest.approx(1.0, abs=0.2)
    capped = I.class_intrinsic_dimensions(x, y, max_rows=150)
    assert capped[1]["twonn_dimension"] == pytest.approx(1.0, abs=0.3)


def test_one_feature_and_a_memmap_work():
    """A 1-wide layer (a bottleneck of one unit) has a TwoNN estimate too (near 1)."""
    x = np.random.default_rng(4).uniform(size=(300, 1))
    assert I.twonn_dimension(x) == pytest.approx(1.0, abs=0.15)
    assert I.lpca_dimension(x) == 1


@pytest.mark.parametrize("shape, curved", [((400, 3), False), ((300, 40), True), ((200, 8), True)])
def test_twonn_equals_scikit_dimensions(shape, curved):
    """The same estimator as skdim's `TwoNN()` (discard 10%, linear fit through 0), on
    low-dimensional (its nearest-neighbour path) and wide (its distance-matrix path) data."""
    ids = skdim_id()
    rng = np.random.default_rng(shape[0])
    x = rng.normal(size=shape)
    if curved:
        x = np.sin(x[:, :3] @ rng.normal(size=(3, shape[1])))  # a 3-manifold curved in p-D
    assert I.twonn_dimension(x) == pytest.approx(ids.TwoNN().fit(x).dimension_, rel=1e-9)


def test_lpca_read_off_the_spectrum_equals_scikit_dimensions():
    """The pipeline counts lPCA's eigenvalues from the class spectra it already has; on
    the same rows that must be skdim's own answer, at several thresholds and shapes."""
    from repflat.analysis.intrinsic import lpca_dimension, lpca_from_spectrum
    from repflat.analysis.spectra import class_spectra

    ids = skdim_id()

    rng = np.random.default_rng(5)
    for n, p, scales in [(200, 12, np.geomspace(1, 1e-3, 12)), (60, 80, np.geomspace(3, 0.01, 80))]:
        X = rng.normal(size=(n, p)) * scales
        y = np.zeros(n, dtype=int)
        s = class_spectra(X, y)[0]
        for alpha in (0.01, 0.05, 0.2):
            reference = ids.lPCA(ver="FO", alphaFO=alpha).fit(X).dimension_
            assert lpca_from_spectrum(s, alpha=alpha) == lpca_dimension(X, alpha=alpha) == reference, (n, p, alpha)
