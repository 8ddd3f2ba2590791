"""Corollary 1's measures on constructed geometries, and their gauge invariance (numpy only).

The discriminative direction of a linear head w is w itself. A class drawn as a line
*along* w breaks the corollary, one drawn *across* it satisfies it, and a class collapsed
to a point satisfies it too; the residual share (variance beyond dim(H) − K + 1) reads
the two lines alike and the collapsed class as thick, which is why it is not the verdict.
"""
from __future__ import annotations

import numpy as np
import pytest

from repflat.analysis.discriminative import discriminative_basis, discriminative_geometry
from repflat.analysis.metrics import residual_variance_share
from repflat.analysis.spectra import class_spectra
from repflat.analysis.layers import layer_tables
from repflat.rundir.features import Discriminative

W = np.array([1.0, 0.0])  # the head's discriminative direction


def head_factors(w=W, K=2, gain=1.0):
    """F_k of a linear 2-class head with logit gap wᵀh: centred logits ±wᵀh/2, so
    J̃ = [w/2; −w/2] and G = J̃ᵀJ̃ = wwᵀ/2 (factor: one row w/√2), for every class."""
    row = gain * w / np.sqrt(2)
    return np.stack([row[None, :]] * K), np.full(K, gain ** 2 * float(w @ w) / 2)


def two_lines(direction, n=200, length=0.6, width=0.01, seed=0):
    """Class 0 around (−1, 0), class 1 around (1, 0), each a segment along `direction`."""
    rng = np.random.default_rng(seed)
    direction = np.asarray(direction, float) / np.linalg.norm(direction)
    normal = np.array([-direction[1], direction[0]])
    t = rng.uniform(-length, length, (2 * n, 1))
    e = rng.normal(0, width, (2 * n, 1))
    y = np.repeat([0, 1], n)
    centres = np.where(y[:, None] == 0, [-1.0, 0.0], [1.0, 0.0])
    return centres + t * direction + e * normal, y


def measures(X, y, factors=None, traces=None, **kw):
    factors, traces = head_factors() if factors is None else (factors, traces)
    per_class, layer = discriminative_geometry(X, y, factors, traces, spectra=class_spectra(X, y), **kw)
    return per_class, layer


def test_a_line_along_the_discriminative_direction_is_not_flat_one_across_it_is():
    along, y = two_lines([1, 0])
    across, _ = two_lines([0, 1])
    a, _ = measures(along, y)
    c, _ = measures(across, y)
    for k in (0, 1):
        # spread along w: the segment's RMS (0.6/√3 ≈ 0.35) over the separation 2
        assert a[k]["along_spread"] == pytest.approx(0.6 / np.sqrt(3) / 2, rel=0.1)
        assert a[k]["across_spread"] < 0.01 and a[k]["along_share"] > 0.99
        assert c[k]["along_spread"] < 0.01 and c[k]["along_share"] < 0.01
        assert c[k]["across_spread"] == pytest.approx(0.6 / np.sqrt(3) / 2, rel=0.1)
        assert a[k]["collapsed"] == c[k]["collapsed"] == 0
    # the residual share cannot tell the two apart: both lines are 1-dimensional
    share = [residual_variance_share(class_spectra(X, y)[0], 1) for X in (along, across)]
    assert share[0] == pytest.approx(share[1], rel=0.2) and max(share) < 1e-3


def test_a_collapsed_class_satisfies_the_corollary_and_is_flagged():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 100)
    X = np.where(y[:, None] == 0, [-1.0, 0.0], [1.0, 0.0]) + rng.normal(0, 1e-3, (200, 2))
    per_class, _ = measures(X, y)
    for k in (0, 1):
        assert per_class[k]["collapsed"] == 1 and per_class[k]["along_spread"] < 1e-2
    # isotropic round-off: the residual share reads the collapsed class as thick (≈ 0.5)
    assert residual_variance_share(class_spectra(X, y)[0], 1) > 0.3
    frame = layer_tables(
        X, y, center=True, rtol=0.01,
        discriminative=Discriminative(*head_factors(), np.array([100, 100])))[1]
    mean = frame[(frame["group"] == "mean") & (frame["metric"] == "collapsed")]["value"]
    assert mean.tolist() == [1.0]


@pytest.mark.parametrize("c", [0.01, 0.5, 3.0, 100.0])
def test_the_gauge_h_to_ch_changes_no_measure_but_the_raw_ones(c):
    """h → c·h with the next layer ÷ c: Jacobians ÷ c. Every ratio stays, σ scales by c,
    layer_scale by c, downstream_gain by 1/c, their product stays."""
    X, y = two_lines([1, 1], seed=3)
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(2, 3, 2))
    traces = np.sum(factors ** 2, axis=(1, 2))
    base, layer = measures(X, y, factors, traces)
    scaled, layer_c = measures(c * X, y, factors / c, traces / c ** 2)
    for k in (0, 1):
        assert scaled[k].keys() == base[k].keys()
        for metric in base[k]:
            expect = base[k][metric] * (c if metric == "separation" else 1)
            assert scaled[k][metric] == pytest.approx(expect, rel=1e-9, abs=1e-12), metric
        assert class_spectra(c * X, y)[k] == pytest.approx(c * class_spectra(X, y)[k], rel=1e-6)
    assert layer_c["layer_scale"] == pytest.approx(c * layer["layer_scale"], rel=1e-9)
    assert layer_c["downstream_gain"] == pytest.approx(layer["downstream_gain"] / c, rel=1e-9)
    assert layer_c["scale_gain_product"] == pytest.approx(layer["scale_gain_product"], rel=1e-9)


def test_the_measures_are_invariant_under_a_rotation_of_the_layer():
    X, y = two_lines([1, 0.3], seed=4)
    theta = 0.7
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    factors, traces = head_factors(w=np.array([1.0, 0.2]))
    base, _ = measures(X, y, factors, traces)
    rotated, _ = measures(X @ R.T, y, factors @ R.T, traces)
    for k in (0, 1):
        for metric, value in base[k].items():
            assert rotated[k][metric] == pytest.approx(value, rel=1e-9, abs=1e-12), metric


def test_the_basis_takes_the_top_directions_of_the_factor():
    F = np.array([[3.0, 0, 0], [0, 0, 1.0], [0, 0.5, 0]])
    V = discriminative_basis(F, 2)
    assert V.shape == (3, 2)
    assert abs(V[:, 0] @ [1, 0, 0]) == pytest.approx(1) and abs(V[:, 1] @ [0, 0, 1]) == pytest.approx(1)
    assert discriminative_basis(np.zeros((2, 3)), 1).shape == (3, 0)  # a head that ignores the layer


def test_separation_along_the_directions_only_and_label_checks():
    # class means apart along y only; the head looks along x: no separation there, so no
    # ratio is defined (left out rather than infinite)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    X = np.where(y[:, None] == 0, [0.0, -1.0], [0.0, 1.0]) + rng.normal(0, 0.1, (100, 2))
    X[:, 0] -= np.where(y == 0, X[y == 0, 0].mean(), X[y == 1, 0].mean())
    per_class, _ = measures(X, y)
    assert "along_spread" not in per_class[0] and "jacobian_energy_share" in per_class[0]
    from repflat.errors import UserError
    with pytest.raises(UserError, match="labels 0..1"):
        discriminative_geometry(X, y + 1, *head_factors())
