import numpy as np
import pytest

from repflat.analysis.layers import analyze_features
from repflat.analysis.runs import collect_runs
from repflat.analysis.report.tables import theory_table
from repflat.analysis.theory import theory_check
from repflat.config import AnalysisConfig


@pytest.fixture(scope="module")
def flat(trained_runs):
    runs, _, _ = collect_runs(list(trained_runs.values()))
    return analyze_features(runs, AnalysisConfig(layers=("fc1", "bottleneck")))[1]


def test_theory_check_gathers_each_class_and_their_mean_over_seeds(flat):
    check = theory_check(flat, "bottleneck")
    assert check["theory_dimension"].unique().tolist() == [1]  # 2 units, 2 classes
    row = check[(check["arm"] == "manifold_mixup") & (check["class"] == 1)
                & (check["metric"] == "residual_variance_share")].iloc[0]
    per_seed = flat[(flat["arm"] == "manifold_mixup") & (flat["layer"] == "bottleneck")
                    & (flat["class"] == 1) & (flat["metric"] == "residual_variance_share")]["value"]
    assert row["n_runs"] == 2 and row["mean"] == pytest.approx(per_seed.mean())
    assert row["std"] == pytest.approx(per_seed.std())
    mean_row = check[(check["arm"] == "none") & (check["group"] == "mean")
                     & (check["metric"] == "numerical_rank")].iloc[0]
    runs = flat[(flat["arm"] == "none") & (flat["layer"] == "bottleneck") & flat["class"].isin([0, 1])
                & (flat["metric"] == "numerical_rank")].groupby("run")["value"].mean()
    assert mean_row["mean"] == pytest.approx(runs.mean())


def test_theory_table_lays_out_classes_by_arm_in_long_format(flat):
    """One row per (class, arm) and one column per measure, so five or fifty arms fit the
    page (two to four columns per arm overflowed it at five arms: issue 21)."""
    table = theory_table(theory_check(flat, "bottleneck"))
    arms = ["none", "input_mixup", "manifold_mixup"]
    assert table["class"].tolist() == [c for c in ["0", "1", "mean"] for _ in arms]
    assert table["arm"].tolist() == arms * 3
    # Corollary 1's own test first (the runs saved discriminative summaries), the shares after
    assert list(table.columns) == ["class", "arm", "along ÷ separation", "collapsed",
                                   "numerical rank", "variance beyond"]
    assert theory_check(flat, "no-such-layer").empty
    assert np.all(table.notna())
