"""MNIST-1D (Greydanus & Kobak, "Scaling Down Deep Learning with MNIST-1D", ICML 2024),
generated offline by the pinned `mnist1d` package.

Only the package's generator is used: `make_dataset` with its default arguments
(`get_dataset_args()`), changed where the config says (samples, seed, shuffled
positions). Never `get_dataset`, which downloads a pickle or writes one to the working
directory. `make_dataset` seeds Python's and numpy's *global* generators
(`mnist1d.utils.set_seed`) and draws from them; the caller's state of both is saved
before and restored after, so loading MNIST-1D changes no one else's random numbers.
"""
from __future__ import annotations

import random

import numpy as np

from repflat.errors import UserError

MNIST1D_VERSION = "0.0.2.post1"
"""The generator version whose output tests/test_mnist1d.py checksums (pyproject pins it)."""
CLASS_NAMES = tuple(str(k) for k in range(10))
"""MNIST-1D's classes are the digits its templates draw."""


def _package():
    try:
        import mnist1d.data  # here: it imports matplotlib.pyplot, a cost only MNIST-1D pays
    except ImportError:
        raise UserError("MNIST-1D needs the `mnist1d` package "
                        f"(pip install 'repflat[mnist1d]', or mnist1d=={MNIST1D_VERSION})",
                        argument="data") from None
    return mnist1d.data


def generator_args(samples: int = 5000, seed: int = 42, shuffled: bool = False):
    """The package's default arguments object with these three changed (the defaults
    give the published 4,000 / 1,000 set)."""
    args = _package().get_dataset_args()
    args.num_samples, args.seed, args.shuffle_seq = int(samples), int(seed), bool(shuffled)
    return args


def make_mnist1d(samples: int = 5000, seed: int = 42, shuffled: bool = False) -> dict:
    """The package's `make_dataset(args)` output (x, y, x_test, y_test, t, templates),
    with the caller's global `random` and `numpy.random` states left as they were."""
    package = _package()
    args = generator_args(samples, seed, shuffled)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        return package.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def load_mnist1d(samples: int = 5000, seed: int = 42, shuffled: bool = False):
    """Train and test arrays: x (n, 40) float32, y (n,) int64, in the generator's order."""
    d = make_mnist1d(samples, seed, shuffled)
    return ((np.asarray(d["x"], np.float32), np.asarray(d["y"], np.int64)),
            (np.asarray(d["x_test"], np.float32), np.asarray(d["y_test"], np.int64)))
