"""Differences between arms with intervals (repflat.analysis.stats), against scipy, and
the report's number format."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from repflat.analysis.report.tables import mean_std, number
from repflat.analysis.stats import baseline_arm, compare, count_note, difference


def test_paired_interval_is_scipys_t_interval_of_the_differences():
    rng = np.random.default_rng(0)
    base = pd.Series(rng.normal(size=6), index=range(6))
    arm = base + 0.5 + rng.normal(scale=0.2, size=6)
    got = difference(arm, base)
    d = (arm - base).to_numpy()
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert got["method"] == "paired t" and got["n"] == 6
    assert got["difference"] == pytest.approx(d.mean())
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high))
    assert got["relative"] == pytest.approx(d.mean() / abs(base.mean()))


def test_unpaired_seeds_use_welchs_interval():
    arm = pd.Series([1.0, 1.4, 1.1, 1.9], index=[10, 11, 12, 13])
    base = pd.Series([0.2, 0.4, 0.1], index=[0, 1, 2])
    got = difference(arm, base)
    ci = stats.ttest_ind(arm, base, equal_var=False).confidence_interval(0.95)
    assert got["method"] == "Welch t" and (got["ci_low"], got["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_fewer_than_three_seeds_give_no_interval():
    got = difference(pd.Series([1.0, 2.0]), pd.Series([0.0, 1.5]))
    assert got["difference"] == pytest.approx(0.75) and np.isnan(got["ci_low"]) and np.isnan(got["ci_high"])


def test_compare_pairs_by_seed_at_the_final_epoch_against_erm():
    rows = [{"run": f"{arm}-{s}", "arm": arm, "strategy": "none" if arm == "erm" else "manifold_mixup",
             "seed": s, "layer": "fc1", "epoch": epoch, "metric": "m",
             "value": (10.0 if arm == "erm" else 8.0) + s * 0.1 + (100 if epoch == 1 else 0)}
            for arm in ("mm", "erm") for s in (0, 1, 2) for epoch in (1, 5)]
    values = pd.DataFrame(rows)
    assert baseline_arm(values) == "erm"
    out = compare(values)
    assert out[["layer", "metric", "arm", "baseline", "method"]].values.tolist() == [
        ["fc1", "m", "mm", "erm", "paired t"]]
    row = out.iloc[0]
    assert row["diff"] == pytest.approx(-2.0) and row["low"] == pytest.approx(-2.0)
    assert "1 intervals were drawn at 95% each" in count_note(out)


@pytest.mark.parametrize("mean, std, n, text", [
    (308.0, 123.4, 3, "310 ± 120"), (6.199, 0.23, 3, "6.20 ± 0.23"), (16.0, 1.3, 3, "16.0 ± 1.3"),
    (0.055, 0.020, 3, "0.055 ± 0.020"), (3e-49, 1e-50, 3, "0 ± 0"), (7.0, 0.0, 3, "7 ± 0"),
    (1.23456, 0.5, 1, "1.235"), (2.5e7, 1e6, 3, "2.50e+07 ± 1.0e+06")])
def test_numbers_read_the_same_way_everywhere(mean, std, n, text):
    assert mean_std(mean, std, n) == text


def test_round_off_is_zero_and_no_exponent_in_the_usual_range():
    assert number(1e-49) == "0" and number(0.000123) == "0.0001230" and number(12345.6) == "12346"
    assert number(float("nan")) == "—"


def test_differences_equal_up_to_rounding_give_their_point_without_a_warning():
    """A sweep's digits analysis printed scipy's 'Precision loss occurred in moment
    calculation' on stderr: a metric whose paired differences agree to a few ulps (a
    count read through float64). Such a spread is rounding: the interval is the point,
    and nothing reaches the reader's terminal."""
    import warnings

    from repflat.analysis.stats import difference

    base = pd.Series([0.25, 0.5, 0.75])
    arm = base + np.array([0.1, 0.1 + 1e-16, 0.1 - 1e-16])  # spread of one ulp or two
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = difference(arm, base)
    assert out["ci_low"] == out["ci_high"] == pytest.approx(out["difference"], abs=1e-15)
    spread = base + np.array([0.1, 0.2, 0.3])  # a real spread still gets its t interval
    out = difference(spread, base)
    assert out["ci_low"] < 0.2 < out["ci_high"] and out["ci_high"] - out["ci_low"] > 0.1
