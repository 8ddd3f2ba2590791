import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from repflat.analysis import metrics as M
from repflat.analysis.spectra import class_spectra, layer_statistics, singular_values
from repflat.errors import UserError


@pytest.fixture(autouse=True)
def single_blas_thread():
    """Reference SVDs single-threaded: multi-threaded LAPACK crawls on a busy 2-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


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
    (np.full((4, 2), np.nan), np.arange(4) % 2, "features: expected finite values"),
    (np.ones((4, 2, 2)), np.arange(4), "features: expected a 2-D array"),
])
def test_bad_input_is_refused(x, y, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        class_spectra(x, y)


# ---------------------------------------------------------------- both paths

METHODS = ["svd", "gram"]


@pytest.mark.parametrize("method", METHODS)
def test_each_path_matches_the_references(method):
    x, y = data(n=90), np.arange(90) % 3
    for cls, s in class_spectra(x, y, method=method).items():
        xk = x[y == cls]
        np.testing.assert_allclose(s, PCA().fit(xk).singular_values_, rtol=1e-9)
    for cls, s in class_spectra(x, y, center=False, method=method).items():
        np.testing.assert_allclose(s, np.linalg.svd(x[y == cls], compute_uv=False), rtol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_invariances_hold_on_each_path(method):
    x, y = data(d=6), np.arange(60) % 2
    q = ortho_group.rvs(6, random_state=3)
    perm = np.random.default_rng(4).permutation(len(x))
    shift = np.where(y[:, None] == 1, -250.0, 30.0)
    base = class_spectra(x, y, method=method)
    for other in (class_spectra(x @ q, y, method=method),
                  class_spectra(x[perm], y[perm], method=method),
                  class_spectra(x + shift, y, method=method)):
        for k in base:
            np.testing.assert_allclose(other[k], base[k], rtol=1e-8, atol=1e-9 * base[k][0])


@pytest.mark.parametrize("method", METHODS)
def test_fewer_rows_than_features(method):
    x, y = data(n=14, d=8), np.repeat([0, 1], 7)   # n_k = 7 < d = 8
    for center in (True, False):
        s = class_spectra(x, y, center=center, method=method)
        assert all(len(v) == 7 for v in s.values())
        if center:  # 7 centred rows span at most 6 dimensions
            assert all(v[-1] == 0 and v[-2] > 0 for v in s.values())
        np.testing.assert_allclose(s[1], singular_values(x[7:], center=center),
                                   atol=1e-7 * s[1][0])


def test_scale_divides_by_the_square_root_of_the_class_size():
    x, y = data(n=50), np.r_[np.zeros(20, int), np.ones(30, int)]
    plain, scaled = class_spectra(x, y), class_spectra(x, y, scale=True)
    np.testing.assert_allclose(scaled[0], plain[0] / np.sqrt(20))
    np.testing.assert_allclose(scaled[1], plain[1] / np.sqrt(30))
    np.testing.assert_allclose(singular_values(x, scale=True), singular_values(x) / np.sqrt(50))


def test_rank_k_classes_have_numerical_rank_k_on_the_gram_path():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1, 2], 40)
    x = np.concatenate([rng.normal(size=(40, k)) @ rng.normal(size=(k, 10)) + 7.0 for k in (1, 3, 6)])
    s = class_spectra(x, y, method="gram")
    assert [M.numerical_rank(s[c], rtol=1e-5) for c in (0, 1, 2)] == [1, 3, 6]


def conditioned_class(rng, n, d, cond):
    """n rows in d dimensions whose centred spectrum is log-spaced from 1 to 1/cond."""
    r = min(n - 1, d)
    u = rng.normal(size=(n, r))
    u = np.linalg.qr(u - u.mean(axis=0))[0]      # columns orthogonal to 1: centring keeps σ
    v = np.linalg.qr(rng.normal(size=(d, r)))[0]
    return u @ np.diag(np.logspace(0, -np.log10(cond), r)) @ v.T


@pytest.mark.parametrize("n", [400, 48])  # d × d Gram; n_k × n_k Gram (fewer rows than features)
def test_accuracy_at_condition_number_1e6_float32(n):
    """Must show: every singular value within 1e-6·σ₁ of a float64 SVD of the same data.

    Float32 features, 10 classes of n rows in 64 dimensions, each class's centred
    spectrum log-spaced from 1 to 1e-6 (condition number 1e6), read whole and in chunks
    of 97 rows (the provisional shift). Class means stay near the spread's scale: far
    means cannot be stored in float32 at this conditioning (their round-off alone would
    swamp σ_min); `test_streaming` checks far means in float64.
    """
    rng = np.random.default_rng(0)
    d, k = 64, 10
    x = np.concatenate([conditioned_class(rng, n, d, 1e6) + rng.normal(size=d) * 0.1
                        for _ in range(k)]).astype(np.float32)
    y = np.repeat(np.arange(k), n)
    for kwargs in ({}, {"chunk_rows": 97, "workers": 2}):
        got = class_spectra(x, y, method="gram", **kwargs)
        for c in range(k):
            xc = x[y == c].astype(np.float64)
            ref = np.linalg.svd(xc - xc.mean(axis=0), compute_uv=False)
            assert ref[min(n, d) - 2] / ref[0] < 2e-6   # the float32 data kept its conditioning
            assert np.max(np.abs(got[c] - ref)) <= 1e-6 * ref[0]
    # the test has teeth: a float32 Gram of the same class misses by far more
    xc = x[y == 0] - x[y == 0].mean(axis=0)
    small = xc.T @ xc if n >= d else xc @ xc.T
    naive = np.sqrt(np.clip(np.linalg.eigvalsh(small)[::-1], 0, None))[:min(n, d)]
    ref = np.linalg.svd(xc.astype(np.float64), compute_uv=False)
    assert np.max(np.abs(naive - ref)) > 10 * 1e-6 * ref[0]


def test_auto_streams_above_the_size_rule(monkeypatch):
    import repflat.analysis.spectra as S

    calls = []
    real = S.gram_statistics
    monkeypatch.setattr(S, "gram_statistics", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    x, y = data(n=60, d=8), np.arange(60) % 3
    layer_statistics(x, y)
    assert calls == []                                   # 480 values: in memory, SVD
    monkeypatch.setattr(S, "SVD_MAX_VALUES", 479)
    layer_statistics(x, y)
    assert calls == [(60, 8)]


def test_classes_of_one_row_have_no_spectrum():
    x, y = data(n=9), np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    for method in METHODS:
        st = layer_statistics(x, y, method=method)
        assert list(st.classes) == [0, 1, 2] and list(st.counts) == [4, 4, 1]
        assert sorted(st.spectra) == [0, 1]
    with pytest.raises(UserError, match="at least one class with two or more rows"):
        class_spectra(x[:3], np.arange(3))


@pytest.mark.parametrize("x, message", [
    (np.ones((4, 2), dtype=bool), "features: expected real numbers"),
    (np.ones((0, 2)), "features: expected at least one row and one column"),
    (np.ones((4, 0)), "features: expected at least one row and one column"),
    (np.array([[1.0, 2.0], [np.inf, 0], [0, 0], [1, 1]]), r"NaN or Inf in row 1"),
])
def test_more_bad_input_is_refused(x, message):
    with pytest.raises(UserError, match=message):
        class_spectra(x, np.arange(len(x)) % 2)


def test_integer_features_are_accepted():
    x = np.random.default_rng(0).integers(-5, 5, size=(30, 4))
    y = np.arange(30) % 2
    np.testing.assert_allclose(class_spectra(x, y)[0], singular_values(x[y == 0].astype(float)))


# ---------------------------------------------------------------- one answer whatever the path

def rank3_class(n: int = 1000, d: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3)) * [5.0, 2.0, 0.5]) @ rng.normal(size=(3, d)) + 3.0


@pytest.mark.parametrize("rtol", [1e-2, 1e-7])
def test_the_svd_and_gram_paths_give_the_same_metrics(rtol):
    from repflat.analysis.layers import layer_tables

    x, y = rank3_class(), np.zeros(1000, dtype=int)
    tables = {m: layer_tables(x, y, center=True, rtol=rtol, method=m)[1] for m in ("svd", "gram")}
    a, b = (t.set_index(["group", "metric"])["value"] for t in tables.values())
    assert a.index.equals(b.index)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-6, atol=0)
    assert a[("class", "numerical_rank")] == b[("class", "numerical_rank")] == 3


def test_round_off_is_zero_on_both_paths_and_identical_rows_have_rank_zero():
    from repflat.analysis.metrics import numerical_rank
    from repflat.analysis.spectra import singular_values

    x = rank3_class()
    for method in ("svd", "gram"):
        s = class_spectra(x, np.zeros(len(x), dtype=int), method=method)[0]
        assert np.count_nonzero(s) == 3, method  # nothing but the three real directions
    same = np.tile(np.array([[1e3, -2.5, 0.1, 7.0]]), (50, 1))
    assert numerical_rank(singular_values(same), 0.01) == 0
    assert not singular_values(same).any()


def test_an_rtol_below_the_accuracy_is_refused():
    from repflat.analysis.moments import RELATIVE_ACCURACY
    from repflat.config.schema import MIN_RTOL

    assert MIN_RTOL == RELATIVE_ACCURACY
    with pytest.raises(UserError, match=r"analysis\.rtol: expected a number in \[1e-07, 1\)"):
        parse_analysis(rtol=1e-9)


def parse_analysis(**fields):
    from repflat.config import AnalysisConfig
    from repflat.strict import parse

    return parse(AnalysisConfig, fields, "analysis")
