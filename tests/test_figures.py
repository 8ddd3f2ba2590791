"""The data behind each figure: bands, heat map cells, boundary maps and embeddings."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from repflat.analysis.report.plotting.boundary import BoundaryDisplay
from repflat.analysis.embeddings import embed, embedding_frame, subsample
from repflat.analysis.report.plotting.embeddings import plot_embeddings
from repflat.analysis.report.figures import epochs_figure, heatmap_figure, spectra_figure
from repflat.analysis.tidy import summarize
from repflat.analysis.layers import analyze_features
from repflat.analysis.report.plotting.plots import class_mean_spectra, metric_matrix, plot_spectrum, seed_band
from repflat.analysis.runs import collect_runs
from repflat.analysis.report.plotting.style import arm_colors
from repflat.analysis.report.toy import boundaries
from repflat.config import AnalysisConfig
from repflat.errors import UserError


@pytest.fixture(scope="module")
def tables(trained_runs):
    runs, _, _ = collect_runs(list(trained_runs.values()))
    spectra, flat = analyze_features(runs, AnalysisConfig(layers=("fc1", "bottleneck", "fc2"),
                                                          epochs="all"))
    return runs, spectra, flat, summarize(flat)


def _final(spectra, layer, cls):
    """Rows of class `cls` (a label), or of a group ("pooled"), at each run's last epoch."""
    of = spectra["group"] == cls if isinstance(cls, str) else spectra["class"] == cls
    d = spectra[(spectra["layer"] == layer) & of]
    return d[d["epoch"] == d.groupby("run")["epoch"].transform("max")]


def test_the_band_is_the_spread_over_seeds(tables):
    _, spectra, _, _ = tables
    data = _final(spectra, "fc1", 0)
    ax = plot_spectrum(data, log=True)
    for k, arm in enumerate(("none", "input_mixup", "manifold_mixup")):
        per_seed = np.stack([data[(data["arm"] == arm) & (data["seed"] == s)]
                             .sort_values("index")["singular_value"].to_numpy() for s in (0, 1)])
        mean, std = per_seed.mean(0), per_seed.std(0, ddof=1)
        # on the log scale an exact 0 (past the class's rank) is left out of the line
        np.testing.assert_allclose(ax.get_lines()[k].get_ydata(), np.where(mean > 0, mean, np.nan))
        # the band's outline runs along the largest seed's value and back along the smallest
        # (a range over seeds: on a log axis mean − std fell below every seed, to the floor)
        outline = ax.collections[k].get_paths()[0].vertices[:, 1]
        assert np.isclose(outline.max(), per_seed.max(0).max())
        # (down to the log axis' bottom: below it, or at 0, there is nothing to draw)
        assert np.isclose(outline.min(), max(per_seed.min(0).min(), ax.get_ylim()[0]))
        band = seed_band(data[data["arm"] == arm], x="index", y="singular_value", hue="arm")
        np.testing.assert_allclose(band["upper"], mean + std)  # the default band: ± std
        ranged = seed_band(data[data["arm"] == arm], x="index", y="singular_value", hue="arm",
                           band="range")
        np.testing.assert_allclose(ranged["upper"], per_seed.max(0))
        np.testing.assert_allclose(ranged["lower"], per_seed.min(0))
        assert set(band["n"]) == {2}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "input_mixup",
                                                                   "manifold_mixup"]
    plt.close("all")


def test_class_average_is_taken_per_run_before_the_seeds(tables):
    _, spectra, _, _ = tables
    final = pd.concat([_final(spectra, "fc1", c) for c in (0, 1)])
    means = class_mean_spectra(final)
    run = means[means["run"] == "none-seed1"].sort_values("index")["singular_value"].to_numpy()
    by_class = [final[(final["run"] == "none-seed1") & (final["class"] == c)]
                .sort_values("index")["singular_value"].to_numpy() for c in (0, 1)]
    np.testing.assert_allclose(run, np.mean(by_class, axis=0))
    assert set(means["group"]) == {"mean"} and means["class"].isna().all()


def test_spectra_figure_puts_the_pooled_control_beside_the_classes(tables):
    _, spectra, _, _ = tables
    fig = spectra_figure(spectra, log=False)
    titles = [a.get_title() for a in fig.axes]
    assert titles[:4] == ["fc1: class 0", "fc1: class 1", "fc1: mean over classes",
                          "fc1: all classes pooled (control)"]
    assert len(titles) == 3 * 4  # three layers, in analysed order
    pooled = _final(spectra, "fc1", "pooled")
    expect = pooled[pooled["arm"] == "none"].groupby("index")["singular_value"].mean()
    np.testing.assert_allclose(fig.axes[3].get_lines()[0].get_ydata(), expect.to_numpy())
    plt.close(fig)


def test_heatmap_cells_are_ratios_to_the_reference_arm(tables):
    _, _, _, summary = tables
    fig = heatmap_figure(summary, "effective_rank")
    ax = fig.axes[0]
    matrix = metric_matrix(summary, "effective_rank")
    assert list(matrix.index) == ["none", "input_mixup", "manifold_mixup"]
    final = summary[(summary["metric"] == "effective_rank") & (summary["epoch"] == 3)]
    value = final[(final["arm"] == "manifold_mixup") & (final["layer"] == "fc2")]["mean"].item()
    assert matrix.loc["manifold_mixup", "fc2"] == pytest.approx(value)
    cells = ax.collections[0].get_array().reshape(matrix.shape)
    np.testing.assert_allclose(cells, np.log2(matrix / matrix.loc["none"]).to_numpy())
    texts = [t.get_text() for t in ax.texts]
    assert f"{value:.3g}" in texts and len(texts) == matrix.size
    assert [a.get_title() for a in fig.axes if a.get_title()] == ["effective_rank",
                                                                  "pooled_effective_rank"]
    assert heatmap_figure(summary, "no_such_metric") is None
    plt.close(fig)


def test_metrics_over_epochs_follow_the_summary(tables):
    _, _, flat, summary = tables
    fig = epochs_figure(summary)
    ax = fig.axes[0]  # largest singular value at fc1
    rows = summary[(summary["metric"] == "largest_singular_value") & (summary["layer"] == "fc1")
                   & (summary["arm"] == "none")].sort_values("epoch")
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [0, 2, 3])
    np.testing.assert_allclose(line.get_ydata(), rows["mean"])
    plt.close(fig)
    assert epochs_figure(summarize(flat[flat["epoch"] == 3])) is None


def test_boundary_display_from_any_function_and_every_response():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(50, 2))

    def proba(points):  # a logistic classifier along x
        p1 = 1 / (1 + np.exp(-3 * points[:, 0]))
        return np.stack([1 - p1, p1], axis=1)

    display = BoundaryDisplay.from_function(proba, data, resolution=20)
    lo, hi = data.min(0), data.max(0)
    pad = 0.1 * (hi - lo)
    assert display.extent == pytest.approx((lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]))
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 20)
    expect = proba(np.stack([xs, np.zeros(20)], axis=1))
    np.testing.assert_allclose(display.probabilities[7], expect)  # every row is the same x sweep
    np.testing.assert_array_equal(display.response("class")[3], (xs > 0).astype(int))
    p = expect
    np.testing.assert_allclose(display.response("entropy")[0], -(p * np.log(p)).sum(1))
    with pytest.raises(UserError, match="rows of class probabilities"):
        BoundaryDisplay.from_function(lambda pts: np.ones((len(pts), 2)), data)
    with pytest.raises(UserError, match="response"):
        display.response("margin")


def test_boundaries_figure_draws_each_saved_grid_three_ways(trained_runs):
    runs, _, _ = collect_runs(list(trained_runs.values()))
    fig = boundaries(runs)
    mm = next(r for r in runs if r.name == "manifold_mixup" and r.seed == 0)
    display = BoundaryDisplay.from_features(mm.features, 3, "input_grid")
    row = fig.axes[6:9]  # third row: manifold mixup (fixed order)
    assert row[0].get_ylabel() == "manifold_mixup (seed 0)"
    for ax, kind in zip(row, ("class", "confidence", "entropy")):
        np.testing.assert_allclose(ax.images[0].get_array(), display.image(kind))
    probs = mm.features.load(mm.features.get("input_grid", 3, "probabilities"))
    np.testing.assert_array_equal(display.response("class").ravel(), probs.argmax(1))
    plt.close(fig)


def test_embeddings_have_one_point_per_sample(trained_runs):
    runs, _, _ = collect_runs([trained_runs["none", 0], trained_runs["manifold_mixup", 0]])
    data = embedding_frame(runs, layer="fc1", methods=("pca", "tsne"))
    labels = runs[0].features.labels("train")
    for _, panel in data.groupby(["arm", "method"]):
        assert len(panel) == len(labels) and panel["sample"].tolist() == list(range(len(labels)))
        assert panel["class"].tolist() == labels.tolist()
        assert panel["class_name"].tolist() == labels.astype(str).tolist()  # no names saved
    fs = runs[0].features
    x = fs.load(fs.get("train", 3, "fc1")).astype(np.float64)
    pca = data[(data["arm"] == "none") & (data["method"] == "pca")][["x", "y"]].to_numpy()
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    reference = (x - x.mean(0)) @ vt[:2].T
    np.testing.assert_allclose(np.abs(pca), np.abs(reference), atol=1e-8)  # axes up to sign
    fig = plot_embeddings(data)
    panel = data[(data["method"] == "tsne") & (data["arm"] == "manifold_mixup")]
    np.testing.assert_allclose(fig.axes[3].collections[0].get_offsets(), panel[["x", "y"]])
    assert any(f"all {len(labels)} samples per panel" in t.get_text() for t in fig.texts)
    plt.close(fig)


def test_embeddings_subsample_large_layers_and_say_so(trained_runs):
    runs, _, _ = collect_runs([trained_runs["none", 0]])
    data = embedding_frame(runs, layer="fc1", methods=("pca",), max_samples=30, seed=4)
    np.testing.assert_array_equal(data["sample"], subsample(40, 30, seed=4))
    assert len(set(data["sample"])) == 30 and data["n_total"].eq(40).all()
    fig = plot_embeddings(data, seed=4)
    assert any("30 of 40 samples per panel, drawn at random (seed 4" in t.get_text() for t in fig.texts)
    plt.close(fig)
    with pytest.raises(UserError, match="no run saved layer 'fc9'"):
        embedding_frame(runs, layer="fc9")


def test_tsne_and_umap_are_seeded():
    x = np.random.default_rng(1).normal(size=(40, 6))
    np.testing.assert_array_equal(embed(x, method="tsne", seed=3), embed(x, method="tsne", seed=3))
    first = embed(x, method="umap", seed=3)
    assert first.shape == (40, 2)
    np.testing.assert_array_equal(first, embed(x, method="umap", seed=3))
    wide = np.random.default_rng(2).normal(size=(40, 120))  # reduced to 50 components first
    assert embed(wide, method="tsne").shape == (40, 2)
    with pytest.raises(UserError, match="unknown name 'isomap'"):
        embed(x, method="isomap")


def test_every_strategy_keeps_its_colour_whatever_else_is_plotted():
    alone = arm_colors(["manifold_mixup"])
    crowded = arm_colors(["dropout", "custom", "erm", "manifold_mixup", "weight_decay"])
    assert alone["manifold_mixup"] == crowded["manifold_mixup"]
    assert crowded["erm"] == arm_colors(["none"])["none"]
    assert len(set(crowded.values())) == len(crowded)
