"""NC2, NC3, NC4 and CDNV (repflat.analysis.collapse) against their formulas on
constructed layers: perfect collapse onto a simplex ETF gives 0, hand-computed means
give the printed values, rotations and scale change nothing."""
from __future__ import annotations

import numpy as np
import pytest

from repflat.analysis import collapse as C
from repflat.analysis.spectra import layer_statistics
from repflat.errors import UserError


def _etf_layer(k=4, d=7, per=20, noise=0.0, seed=0):
    """Class means on a rotated, scaled simplex ETF in d dimensions (centred, balanced)."""
    rng = np.random.default_rng(seed)
    simplex = np.eye(k) - 1.0 / k                       # rows: a simplex ETF in R^k
    basis = np.linalg.qr(rng.normal(size=(d, k)))[0]    # into R^d, rotated
    means = 5.0 * simplex @ basis.T + 3.0               # scaled and shifted
    y = np.repeat(np.arange(k), per)
    return means[y] + noise * rng.normal(size=(k * per, d)), y


def test_collapse_onto_a_simplex_etf_gives_zero_for_every_measure():
    x, y = _etf_layer()
    for name, value in C.nc2(x, y).items():
        assert value == pytest.approx(0.0, abs=1e-9), name
    assert C.cdnv(x, y) == pytest.approx(0.0, abs=1e-12)
    assert C.nc1(x, y) == pytest.approx(0.0, abs=1e-12)


def test_nc2_of_hand_made_means_equals_the_printed_formulas():
    # centred means (balanced, so μ_G = 0): norms 2, √2, √2; cosines −1/√2, −1/√2, 0
    m = np.array([[2.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]])
    got = C.nc2_from_moments(m, np.array([5, 5, 5]))
    norms = np.array([2.0, np.sqrt(2), np.sqrt(2)])
    cos = np.array([-1 / np.sqrt(2), -1 / np.sqrt(2), 0.0])
    assert got["nc2_equinorm"] == pytest.approx(norms.std() / norms.mean())
    assert got["nc2_equiangularity"] == pytest.approx(cos.std())
    assert got["nc2_max_angle"] == pytest.approx(np.mean(np.abs(cos + 0.5)))
    g = m @ m.T
    etf = (np.eye(3) - 1 / 3) / np.sqrt(2)
    assert got["nc2_etf_distance"] == pytest.approx(np.linalg.norm(g / np.linalg.norm(g) - etf))
    assert got["nc2_etf_distance"] > 0.1


def test_two_classes_point_opposite_ways_and_differ_in_norm_only_by_their_sizes():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 5)), np.r_[np.zeros(20, int), np.ones(30, int)]
    got = C.nc2(x, y)
    assert got["nc2_equiangularity"] == pytest.approx(0.0, abs=1e-9)
    assert got["nc2_max_angle"] == pytest.approx(0.0, abs=1e-9)
    assert got["nc2_equinorm"] == pytest.approx(10 / 50)   # |n1 − n2| / (n1 + n2)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in C.nc2(x, y, mean="class_means").values())


def test_nc2_and_cdnv_are_invariant_to_rotation_scale_and_shift():
    x, y = _etf_layer(noise=1.0, seed=2)
    q = np.linalg.qr(np.random.default_rng(3).normal(size=(7, 7)))[0]
    moved = 0.3 * x @ q + 11.0
    for name, value in C.nc2(x, y).items():
        assert C.nc2(moved, y)[name] == pytest.approx(value, rel=1e-8), name
    assert C.cdnv(moved, y) == pytest.approx(C.cdnv(x, y), rel=1e-8)


def test_cdnv_of_two_classes_is_their_variance_over_the_squared_distance():
    # class 0 at ±s about 0, class 1 at ±s about d (1-D): Var = s², CDNV = 2 s² / (2 d²)
    s, d = 0.5, 4.0
    x = np.array([[-s], [s], [d - s], [d + s]])
    y = np.array([0, 0, 1, 1])
    assert C.cdnv(x, y) == pytest.approx(s ** 2 / d ** 2)
    # uncentred spectra give the same variances
    st = layer_statistics(x, y, center=False, pooled=False)
    assert C.cdnv(st) == pytest.approx(s ** 2 / d ** 2)


def test_nc3_is_zero_for_weights_aligned_with_the_means_and_four_for_opposite_ones():
    x, y = _etf_layer(noise=0.5, seed=4)
    st = layer_statistics(x, y, pooled=False)
    m = st.means - st.counts @ st.means / st.counts.sum()
    assert C.nc3_self_duality(st.means, st.counts, 7.0 * m) == pytest.approx(0.0, abs=1e-12)
    assert C.nc3_self_duality(st.means, st.counts, -m) == pytest.approx(4.0)
    with pytest.raises(UserError, match="weights"):
        C.nc3_self_duality(st.means, st.counts, m[:, :3])


def test_nc4_counts_the_samples_where_the_nearest_centre_is_not_the_prediction():
    x, y = _etf_layer(noise=0.1, seed=5)
    assert C.nc4_ncc_mismatch(x, y, y) == 0.0        # well separated: NCC = labels
    wrong = (y + 1) % 4
    assert C.nc4_ncc_mismatch(x, y, wrong) == 1.0
    half = np.where(np.arange(len(y)) % 2 == 0, y, wrong)
    assert C.nc4_ncc_mismatch(x, y, half) == pytest.approx(0.5)
    scores = np.eye(4)[y] * 3.0                      # scores: argmax taken
    assert C.nc4_ncc_mismatch(x, y, scores) == 0.0
    with pytest.raises(UserError, match="predictions"):
        C.nc4_ncc_mismatch(x, y, y[:-1])


def test_undefined_cases_are_nan():
    x = np.random.default_rng(6).normal(size=(10, 3))
    one = np.zeros(10, int)
    assert np.isnan(C.cdnv(x, one))
    assert all(np.isnan(v) for v in C.nc2(x, one).values())
