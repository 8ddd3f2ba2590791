import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from analysis.spectra import class_spectra, singular_values
from repflat.errors import UserError


def data(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ np.diag(np.linspace(3, 0.1, d)) + 5.0


def test_uncentred_matches_numpy_svd():
    x = data()
    np.testing.assert_allclose(singular_values(x, center=False),
                               np.linalg.svd(x, compute_uv=False), rtol=1e-12)


def test_centred_matches_sklearn_pca():
    x = data()
    np.testing.assert_allclose(singular_values(x), PCA().fit(x).singular_values_, rtol=1e-10)


def test_float32_input_is_computed_in_float64():
    x = data().astype(np.float32)
    assert singular_values(x).dtype == np.float64
    np.testing.assert_allclose(singular_values(x), singular_values(x.astype(np.float64)))


def test_invariant_under_orthogonal_rotation_and_row_permutation():
    x = data(d=6)
    q = ortho_group.rvs(6, random_state=1)
    perm = np.random.default_rng(2).permutation(len(x))
    for center in (True, False):
        s = singular_values(x, center=center)
        np.testing.assert_allclose(singular_values(x @ q, center=center), s, rtol=1e-10)
        np.testing.assert_allclose(singular_values(x[perm], center=center), s, rtol=1e-10)


def test_centred_spectra_ignore_a_per_class_translation():
    x, y = data(), np.arange(60) % 3
    shift = np.where(y[:, None] == 1, 100.0, 0.0)
    a, b = class_spectra(x, y), class_spectra(x + shift, y)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9)
    assert not np.allclose(class_spectra(x, y, center=False)[1],
                           class_spectra(x + shift, y, center=False)[1])


def test_class_spectra_take_each_class_alone():
    x, y = data(), np.repeat([0, 1], 30)
    spectra = class_spectra(x, y)
    assert list(spectra) == [0, 1]
    np.testing.assert_allclose(spectra[1], singular_values(x[30:]))


@pytest.mark.parametrize("x, y, message", [
    (np.ones((4, 2)), np.arange(3), "labels: expected a 1-D array of 4 class labels"),
    (np.ones((4, 2)), np.array([0.0, 1, 0, 1]), "labels: expected integer class labels"),
    (np.full((4, 2), np.nan), np.arange(4), "features: expected finite values"),
    (np.ones((4, 2, 2)), np.arange(4), "features: expected a 2-D array"),
])
def test_bad_input_is_refused(x, y, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        class_spectra(x, y)
