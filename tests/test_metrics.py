import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from repflat.errors import UserError
from repflat.analysis import metrics as M
from repflat.analysis.spectra import layer_statistics, singular_values


def rank_k(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, k)) @ rng.normal(size=(k, d))


@pytest.mark.parametrize("k", [1, 3, 7])
def test_rank_k_data_has_numerical_rank_k(k):
    s = singular_values(rank_k(100, 12, k) + 4.0)  # an offset: centring removes it
    assert M.numerical_rank(s, rtol=1e-6) == k
    assert M.residual_variance_share(s, k) < 1e-20


def test_numerical_rank_counts_above_the_relative_tolerance():
    s = np.array([10.0, 1.0, 0.11, 0.09, 0.0])
    assert M.numerical_rank(s, 0.01) == 3   # above 0.1
    assert M.numerical_rank(s, 0.05) == 2   # above 0.5
    assert M.numerical_rank(s, 0.1) == 1    # strictly above 1.0
    assert M.numerical_rank(np.zeros(3), 0.01) == 0


@pytest.mark.parametrize("m", [1, 2, 5, 30])
def test_equal_singular_values_give_effective_rank_equal_to_their_count(m):
    assert M.effective_rank(np.r_[np.full(m, 2.5), np.zeros(4)]) == pytest.approx(m)


def test_effective_rank_by_hand():
    s = np.array([3.0, 1.0])  # p = (3/4, 1/4)
    expected = np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    assert M.effective_rank(s) == pytest.approx(expected)
    assert M.effective_rank(np.zeros(3)) == 0.0


def test_paper_statistics():
    s = np.array([5.0, 2.0, 1.0, 0.5])
    assert M.largest_singular_value(s) == 5.0
    assert M.sum_other_singular_values(s) == 3.5


def test_theory_dimension_is_corollary_1():
    assert M.theory_dimension(12, 10) == 3   # the MNIST bottleneck of Appendix G
    assert M.theory_dimension(2, 2) == 1     # the spirals bottleneck
    assert M.theory_dimension(9, 10) == 0    # dim(H) = K − 1: classes collapse to points


def test_residual_variance_share():
    s = np.array([4.0, 3.0])  # σ² = 16, 9
    assert M.residual_variance_share(s, 1) == pytest.approx(9 / 25)
    assert np.isnan(M.residual_variance_share(s, 2))  # no direction beyond k = r: vacuous, NA


def test_spectra_must_be_spectra():
    with pytest.raises(UserError, match="in descending order"):
        M.residual_variance_share([3.0, 4.0], 1)  # read as σ₁ = 3, it would say 16/25
    with pytest.raises(UserError, match="in descending order"):
        M.stable_rank([1.0, 2.0])  # would be 5, above the rank
    with pytest.raises(UserError, match=r"finite, >= 0"):
        M.effective_rank([1.0, -1.0])
    assert M.effective_rank([1.0, 2.0]) == pytest.approx(M.effective_rank([2.0, 1.0]))  # order-free
    with pytest.raises(UserError, match="k: expected a subspace dimension >= 0"):
        M.residual_variance_share([2.0, 1.0], -1)


# ---------------------------------------------------------------- more spectrum metrics

@pytest.fixture(autouse=True)
def single_blas_thread():
    """Reference SVDs single-threaded: multi-threaded LAPACK crawls on a busy 2-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("m", [1, 2, 5, 30])
def test_equal_spectra_give_their_count(m):
    s = np.r_[np.full(m, 0.7), np.zeros(3)]
    assert M.participation_ratio(s) == pytest.approx(m)
    assert M.stable_rank(s) == pytest.approx(m)
    assert M.rankme(s) == pytest.approx(m, rel=1e-4)   # ε counts the zeros a little


def test_rankme_is_garrido_et_al_eq_1():
    s = np.array([3.0, 1.0, 0.0])
    p = s / 4 + 1e-7
    assert M.rankme(s) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-14)
    assert M.rankme(s) != M.effective_rank(s)
    assert M.rankme(s, eps=0.0) == pytest.approx(M.effective_rank(s))
    assert M.rankme(np.zeros(4)) == 0.0


def test_participation_ratio_and_stable_rank_by_hand():
    s = np.array([4.0, 3.0])  # λ = 16, 9
    assert M.participation_ratio(s) == pytest.approx(25 ** 2 / (16 ** 2 + 9 ** 2))
    assert M.stable_rank(s) == pytest.approx(25 / 16)
    assert M.participation_ratio(np.zeros(2)) == 0.0 and M.stable_rank(np.zeros(2)) == 0.0


def test_stable_rank_is_frobenius_over_spectral_norm():
    x = np.random.default_rng(1).normal(size=(30, 6))
    s = singular_values(x, center=False)
    assert M.stable_rank(s) == pytest.approx(np.linalg.norm(x, "fro") ** 2 / np.linalg.norm(x, 2) ** 2)
    assert 1 <= M.stable_rank(s) <= M.numerical_rank(s, 1e-12)


def test_variance_share_is_pcas_explained_variance_ratio():
    from sklearn.decomposition import PCA

    x = np.random.default_rng(2).normal(size=(50, 7)) @ np.diag([5, 3, 2, 1, 0.5, 0.2, 0.1])
    ratio = PCA().fit(x).explained_variance_ratio_
    s = singular_values(x)
    for k in (1, 2, 5, 7):
        assert M.variance_share(s, k) == pytest.approx(ratio[:k].sum())
    assert M.variance_share(s, 3) + M.residual_variance_share(s, 3) == pytest.approx(1.0)


def test_corollary_1_check_is_zero_on_affine_subspaces_of_the_theory_dimension():
    rng = np.random.default_rng(3)
    d, k = 12, 10
    m = M.theory_dimension(d, k)                      # 3, as the MNIST bottleneck
    x = rng.normal(size=(200, m)) @ rng.normal(size=(m, d)) + rng.normal(size=d) * 50
    assert M.residual_variance_share(singular_values(x), m) < 1e-20
    x_noisy = x + 1e-3 * rng.normal(size=x.shape)
    assert 0 < M.residual_variance_share(singular_values(x_noisy), m) < 1e-5


# ---------------------------------------------------------------- NC1 and within/between

def reference_nc1(x, y):
    """Papyan et al.'s NC1 spelled out with explicit covariances and numpy's pinv."""
    classes = np.unique(y)
    mu_g = x.mean(axis=0)
    means = np.array([x[y == c].mean(axis=0) for c in classes])
    sw = sum((x[y == c] - means[i]).T @ (x[y == c] - means[i]) for i, c in enumerate(classes)) / len(x)
    sb = (means - mu_g).T @ (means - mu_g) / len(classes)
    return np.trace(sw @ np.linalg.pinv(sb, hermitian=True)) / len(classes), np.trace(sw) / np.trace(sb)


def test_nc1_by_hand_in_one_dimension():
    x = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    # Σ_W = mean((±1)²) = 1; μ = (1, 5), μ_G = 3, Σ_B = mean((∓2)²) = 4; NC1 = (1/2)(1/4)
    assert M.nc1(x, y) == pytest.approx(1 / 8)
    assert M.within_between_ratio(x, y) == pytest.approx(1 / 4)


def test_nc1_by_hand_with_a_rank_one_between_class_scatter():
    # two classes in 2D: means (±2, 0); within: class 0 spreads ±1 along x, class 1 ±3 along y
    x = np.array([[-3.0, 0], [-1, 0], [2, 3], [2, -3]])
    y = np.array([0, 0, 1, 1])
    # Σ_W = diag(2·1, 2·9)/4 = diag(0.5, 4.5); Σ_B = diag(4, 0), Σ_B⁺ = diag(1/4, 0)
    assert M.nc1(x, y) == pytest.approx(0.5 * 0.25 / 2)
    assert M.within_between_ratio(x, y) == pytest.approx(5.0 / 4.0)


def test_nc1_matches_the_explicit_formula():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 5, 300)
    x = rng.normal(size=(300, 8)) + 3 * rng.normal(size=(5, 8))[y]
    nc1, ratio = reference_nc1(x, y)
    for method in ("svd", "gram"):
        st = layer_statistics(x, y, method=method)
        assert M.nc1(st) == pytest.approx(nc1, rel=1e-9)
        assert M.within_between_ratio(st) == pytest.approx(ratio, rel=1e-9)


def test_collapsed_classes_give_nc1_zero():
    rng = np.random.default_rng(5)
    means = rng.normal(size=(4, 6))
    y = np.repeat(np.arange(4), 10)
    x = means[y]
    for method in ("svd", "gram"):  # 0 up to the round-off of a class mean (eps² relative)
        st = layer_statistics(x, y, method=method)
        assert 0 <= M.nc1(st) < 1e-25 and 0 <= M.within_between_ratio(st) < 1e-25
    x[0, 0] += 1e-3  # any spread at all registers
    assert M.nc1(x, y) > 1e-10


def test_nc1_is_invariant_to_rotation_scale_translation_and_relabelling():
    from scipy.stats import ortho_group

    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 90)
    x = rng.normal(size=(90, 5)) + 2 * rng.normal(size=(3, 5))[y]
    q = ortho_group.rvs(5, random_state=7)
    base = M.nc1(x, y)
    assert M.nc1(x @ q, y) == pytest.approx(base)
    assert M.nc1(7.5 * x + 3.0, y) == pytest.approx(base)
    assert M.nc1(x, np.array([10, -2, 5])[y]) == pytest.approx(base)


def test_nc1_is_undefined_without_between_class_spread():
    x = np.random.default_rng(8).normal(size=(10, 3))
    assert np.isnan(M.nc1(x, np.zeros(10, int)))                     # one class
    same = np.r_[x, x]
    assert np.isnan(M.nc1(same, np.repeat([0, 1], 10)))              # identical means
    assert np.isnan(M.within_between_ratio(same, np.repeat([0, 1], 10)))


def _two_conventions(counts, seed=0):
    """Features of three classes in 4-D with `counts` rows each, and both NC1s."""
    from repflat.analysis.metrics import nc1, within_between_ratio

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, 4))
    x = np.concatenate([c + rng.normal(0, 1, (n, 4)) for c, n in zip(centres, counts)])
    y = np.repeat(np.arange(3), counts)
    return {mean: (nc1(x, y, mean=mean), within_between_ratio(x, y, mean=mean))
            for mean in ("global", "class_means")}, x, y


def test_nc1_conventions_agree_on_balanced_classes():
    both, _, _ = _two_conventions([50, 50, 50])
    assert both["global"] == pytest.approx(both["class_means"], rel=1e-12)


def test_nc1_conventions_on_imbalanced_classes_match_their_definitions():
    both, x, y = _two_conventions([200, 20, 20])
    # references built from the definitions, one per convention (numpy's pinv)
    means = np.stack([x[y == k].mean(0) for k in range(3)])
    sigma_w = sum((x[y == k] - means[k]).T @ (x[y == k] - means[k]) for k in range(3)) / len(x)
    for mean, centre in (("global", x.mean(0)), ("class_means", means.mean(0))):
        m = means - centre
        sigma_b = m.T @ m / 3
        assert both[mean][0] == pytest.approx(np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / 3, rel=1e-9)
        assert both[mean][1] == pytest.approx(np.trace(sigma_w) / np.trace(sigma_b), rel=1e-9)
    # the global mean leans to the big class, which widens Σ_B: a smaller NC1 and ratio
    assert both["global"][0] < both["class_means"][0]
    assert both["global"][1] < both["class_means"][1]


def test_nc1_mean_is_an_analysis_setting_and_a_flag():
    from repflat.cli.commands import analysis_overrides
    from repflat.cli.parser import build_parser
    from repflat.config import AnalysisConfig
    from repflat.strict import parse
    from repflat.errors import UserError

    args = build_parser().parse_args(["analyze", "runs/x", "--nc1-mean", "class_means"])
    assert analysis_overrides(args) == {"nc1_mean": "class_means"}
    assert AnalysisConfig().nc1_mean == "global"
    with pytest.raises(UserError, match="analysis.nc1_mean: expected one of 'global', 'class_means'"):
        parse(AnalysisConfig, {"nc1_mean": "grand"}, "analysis")
