import numpy as np
import pytest

from analysis import metrics as M
from analysis.spectra import singular_values


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
    s = np.array([3.0, 4.0])  # σ² = 9, 16
    assert M.residual_variance_share(s, 1) == pytest.approx(16 / 25)
    assert M.residual_variance_share(s, 2) == 0.0
