"""The 2-D toy data sets: seeded, balanced, of the documented shapes; label noise flips
exactly the asked share of training labels; parameters are checked strictly."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_moons

from repflat.strict import parse
from repflat.config import DataConfig
from repflat.errors import UserError
from repflat.base.data import load_data
from repflat.base.data.toy import flip_labels, make_toy
from repflat.config.toy import make_checkerboard

TOYS = {"spirals": {"n_classes": 3}, "moons": {}, "circles": {}, "blobs": {"n_classes": 4},
        "gaussian_quantiles": {"n_classes": 3}, "xor": {"cells": 3}}


def config(name: str, **fields):
    return parse(DataConfig, {"name": name, "n_per_class": 30, **TOYS[name], **fields}, "data")


@pytest.mark.parametrize("name", TOYS)
def test_same_seed_same_points_other_seed_other_points(name):
    x0, y0, _ = make_toy(config(name, seed=3))
    x1, y1, _ = make_toy(config(name, seed=3))
    x2, _, _ = make_toy(config(name, seed=4))
    np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(y0, y1)
    assert not np.allclose(x0, x2)


@pytest.mark.parametrize("name", TOYS)
def test_shapes_and_exact_class_balance(name):
    cfg = config(name)
    x, y, k = make_toy(cfg)
    assert k == TOYS[name].get("n_classes", 2)
    assert x.shape == (30 * k, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [30] * k
    assert (np.diff(y) >= 0).all()  # class-major, as spirals
    data = load_data(cfg)
    assert data.input_shape == (2,) and data.n_classes == k
    assert np.bincount(data.labels["test"]).tolist() == [15] * k  # stratified halves


def test_moons_are_scikit_learns():
    x, y, _ = make_toy(config("moons", noise=0.2, seed=7))
    ref_x, ref_y = make_moons((30, 30), noise=0.2, random_state=7)
    order = np.argsort(ref_y, kind="stable")
    np.testing.assert_allclose(x, ref_x[order], rtol=1e-6)


def test_checkerboard_labels_are_the_parity_of_the_square():
    cells = 4
    x, y = make_checkerboard(cells, 500, seed=1)
    assert (np.abs(x) <= 1).all()
    i, j = np.floor((x + 1) * cells / 2).astype(int).T
    np.testing.assert_array_equal((i + j) % 2, y)
    # XOR: cells = 2 labels by the product of the signs
    x, y = make_checkerboard(2, 200, seed=2)
    np.testing.assert_array_equal(y, (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(int))


def test_label_noise_flips_exactly_the_share_of_training_labels_only():
    clean, noisy = load_data(config("blobs")), load_data(config("blobs", label_noise=0.2))
    np.testing.assert_array_equal(clean.arrays["train"], noisy.arrays["train"])
    np.testing.assert_array_equal(clean.labels["test"], noisy.labels["test"])  # test stays true
    changed = clean.labels["train"] != noisy.labels["train"]
    assert changed.sum() == round(0.2 * len(changed))
    again = load_data(config("blobs", label_noise=0.2))
    np.testing.assert_array_equal(again.labels["train"], noisy.labels["train"])
    other = load_data(config("blobs", label_noise=0.2, seed=1))
    assert not np.array_equal(other.labels["train"] != load_data(config("blobs", seed=1)).labels["train"],
                              changed)


def test_flipped_labels_go_to_every_other_class():
    y = np.repeat(np.arange(3), 2000)
    out = flip_labels(y, 0.5, 3, seed=0)
    moved = out != y
    assert moved.sum() == 3000
    pairs = np.bincount(y[moved] * 3 + out[moved], minlength=9).reshape(3, 3)
    assert (np.diag(pairs) == 0).all()
    off = pairs[~np.eye(3, dtype=bool)]
    assert off.min() > 0.8 * off.mean()  # uniform among the K − 1 others


@pytest.mark.parametrize("name, fields, key", [
    ("moons", {"label_noise": 0.5}, "label_noise"),
    ("blobs", {"n_classes": 3, "label_noise": -0.1}, "label_noise"),
    ("circles", {"factor": 1.0}, "factor"),
    ("blobs", {"spread": 0}, "spread"),
    ("xor", {"cells": 1}, "cells"),
    ("gaussian_quantiles", {"n_classes": 1}, "n_classes"),
    ("moons", {"n_per_class": 3}, "n_per_class"),
    ("moons", {"n_per_class": 10**7}, "n_per_class"),
    ("moons", {"noise": -1.0}, "noise"),
    ("moons", {"turns": 2}, "turns"),  # a spirals parameter on moons: unknown key
    ("xor", {"cells": 2.5}, "cells"),
])
def test_bad_parameters_are_one_line_errors_naming_the_key(name, fields, key):
    with pytest.raises(UserError) as err:
        parse(DataConfig, {"name": name, **fields}, "data")
    assert f"data.{key}" in str(err.value) or f"'{key}'" in str(err.value)
    assert "\n" not in str(err.value)
