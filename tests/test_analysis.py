import numpy as np
import pandas as pd
import pytest

from repflat.analysis import metrics as M
from repflat.analysis.report.plotting.boundary import BoundaryDisplay
from repflat.analysis.report.toy import figure1
from repflat.analysis.tidy import summarize
from repflat.analysis.layers import analyze_features, layer_tables
from repflat.analysis.runs import collect_runs
from repflat.analysis.spectra import class_spectra
from repflat.config import AnalysisConfig
from repflat.errors import UserError


def test_layer_tables_follow_the_definitions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = np.repeat([0, 1], 20)
    srows, mrows = layer_tables(x, y, center=True, rtol=0.01)
    key = mrows["class"].astype("string").where(mrows["group"] == "class", mrows["group"])
    m = mrows.assign(key=key).set_index(["key", "metric"])["value"]
    s0 = class_spectra(x, y)[0]
    assert m["0", "largest_singular_value"] == pytest.approx(s0[0])
    assert m["0", "sum_other_singular_values"] == pytest.approx(s0[1:].sum())
    assert m["0", "effective_rank"] == pytest.approx(M.effective_rank(s0))
    assert m["0", "theory_dimension"] == 4 and m["0", "n_samples"] == 20
    spectra = class_spectra(x, y)
    assert m["mean", "mean_first_singular_value"] == pytest.approx((spectra[0][0] + spectra[1][0]) / 2)
    pooled = np.linalg.svd(x - x.mean(0), compute_uv=False)
    assert m["pooled", "largest_singular_value"] == pytest.approx(pooled[0])
    s = pd.DataFrame(srows)
    np.testing.assert_allclose(s[s["group"] == "pooled"]["singular_value"], pooled)


def test_frames_from_runs(trained_runs):
    runs, _, _ = collect_runs([trained_runs["none", 0], trained_runs["manifold_mixup", 1]])
    spectra, flat = analyze_features(runs, AnalysisConfig(layers=("fc1", "bottleneck")))
    assert set(spectra.columns) >= {"run", "arm", "strategy", "seed", "layer", "epoch", "class",
                                    "index", "singular_value"}
    assert set(flat.columns) >= {"run", "strategy", "seed", "layer", "epoch", "class", "metric", "value"}
    assert set(flat["epoch"]) == {3} and set(flat["layer"]) == {"fc1", "bottleneck"}
    assert set(flat["group"]) == {"class", "pooled", "mean", "all"}
    assert set(flat["class"].dropna()) == {0, 1} and set(flat["seed"]) == {0, 1}
    assert str(flat["class"].dtype) == str(flat["seed"].dtype) == "Int64"
    spectra_all, _ = analyze_features(runs, AnalysisConfig(layers=("fc1",), epochs="all"))
    assert set(spectra_all["epoch"]) == {0, 2, 3}


def test_summary_spread_is_over_seeds(trained_runs):
    runs, _, _ = collect_runs([trained_runs["none", 0], trained_runs["none", 1]])
    _, flat = analyze_features(runs, AnalysisConfig(layers=("fc1",)))
    summary = summarize(flat)
    row = summary[summary["metric"] == "largest_singular_value"].iloc[0]
    per_seed = (flat[(flat["metric"] == "largest_singular_value") & flat["class"].isin([0, 1])]
                .groupby("seed")["value"].mean())
    assert row["n_runs"] == 2
    assert row["mean"] == pytest.approx(per_seed.mean())
    assert row["std"] == pytest.approx(per_seed.std())


def test_boundary_display_matches_the_saved_grid(trained_runs):
    run = collect_runs([trained_runs["none", 0]])[0][0]
    fs = run.features
    display = BoundaryDisplay.from_features(fs, 3, "input_grid")
    probs = fs.load(fs.get("input_grid", 3, "probabilities"))
    points = fs.load(fs.get("input_grid", 3, "input"))
    assert display.probabilities.shape == (8, 8, 2)
    # row i, column j of the display is the grid point (x_j, y_i)
    i, j = 5, 2
    assert points[i * 8 + j, 0] == pytest.approx(np.unique(points[:, 0])[j])
    np.testing.assert_allclose(display.probabilities[i, j], probs[i * 8 + j])
    np.testing.assert_allclose(display.response("confidence"), probs.max(1).reshape(8, 8))
    assert display.extent == pytest.approx((points[:, 0].min(), points[:, 0].max(),
                                            points[:, 1].min(), points[:, 1].max()))
    ax = display.plot()
    assert ax.images[0].get_array().shape == (8, 8, 3)


def test_figure1_draws_from_the_runs(trained_runs):
    runs, _, _ = collect_runs(list(trained_runs.values()))
    spectra, _ = analyze_features(runs, AnalysisConfig(layers=("fc1", "fc2")))
    fig = figure1(runs, spectra, layers=("fc1", "fc2"), cls=1)
    axes = fig.axes
    assert [a.get_title()[:3] for a in axes[:6]] == ["(a)", "(b)", "(c)", "(d)", "(e)", "(f)"]
    # panel e: the plane map, then the training states, then the uniform inputs' states
    mm = next(r for r in runs if r.strategy == "manifold_mixup" and r.seed == 0)
    dots = axes[4].collections[-1].get_offsets()
    np.testing.assert_allclose(dots, mm.features.load(mm.features.get("uniform", 3, "bottleneck")))
    # panel c: one line per arm, each the mean over seeds of class 1 at fc1
    ys = [l.get_ydata() for l in axes[2].get_lines()]
    for arm in ("none", "input_mixup", "manifold_mixup"):
        sel = spectra[(spectra["layer"] == "fc1") & (spectra["class"] == 1) & (spectra["arm"] == arm)]
        expect = sel.groupby("index")["singular_value"].mean().to_numpy()
        # panel c is on a log axis: an exact 0 (past the class's rank) is left out (NaN)
        shown = np.where(expect > 0, expect, np.nan)
        assert sum(len(y) == len(shown) and np.allclose(np.asarray(y, float), shown, equal_nan=True)
                   for y in ys) == 1, arm


def test_collect_runs_errors(tmp_path):
    with pytest.raises(UserError, match="an existing run or experiment directory"):
        collect_runs([tmp_path / "missing"])
    with pytest.raises(UserError, match="a run directory"):
        collect_runs([tmp_path])


def test_bare_features_directory_reads_as_unknown(tmp_path):
    from repflat.rundir.features import FeatureWriter

    w = FeatureWriter(tmp_path)
    w.add_labels("train", np.repeat([0, 1], 5))
    w.add("train", 1, "emb", np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32))
    runs, _, _ = collect_runs([tmp_path])
    _, flat = analyze_features(runs)
    assert set(flat["strategy"]) == {"unknown"} and flat["seed"].isna().all()
