"""Figures that are right for any input: the data behind each figure (the frames the
plotting functions receive, the values on the Figure's artists) for runs built here:
one arm, two models with different layers, a random-init model (epoch 0 only), a single
seed, eight user-named arms, 1-D and 3-D layers, a class of two samples."""
import io
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from repflat.analysis.report.build import ReportOptions, build_report
from repflat.analysis.report.figures import (constant_panels, epochs_figure, heatmap_figure,
                                             spectra_figure)
from repflat.analysis.report.plotting.boundary import BoundaryDisplay, scatter_classes
from repflat.analysis.report.plotting.embeddings import plot_embeddings
from repflat.analysis.report.plotting.plots import plot_spectrum
from repflat.analysis.report.plotting.style import arm_colors, class_colors
from repflat.analysis.report.tables import number
from repflat.analysis.report.toy import boundaries
from repflat.analysis.results import Analysis
from repflat.analysis.embeddings import embed_runs
from repflat.analysis.tidy import summarize
from repflat.analysis.layers import analyze_features
from repflat.config import AnalysisConfig
from repflat.rundir.features import MemoryFeatures
from repflat.rundir.names import UNKNOWN, Status
from repflat.rundir.run import RunInfo

K = 3
EIGHT = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def affine_classes(n=12, d=5, rank=2, seed=0, sizes=None):
    """K classes, each on its own `rank`-dimensional affine subspace of R^d (float32, as
    training saves them): with d − K + 1 ≥ rank, the variance beyond dim(H) − K + 1 is
    exactly 0, and what the SVD returns there is round-off (float32 rounding of the large
    offset leaves ~1e-14 of it, above the spectra's 1e-7 · σ₁ floor)."""
    rng = np.random.default_rng(seed)
    sizes = sizes or [n] * K
    y = np.repeat(np.arange(K), sizes)
    x = np.zeros((len(y), d))
    for c in range(K):
        x[y == c] = (rng.normal(size=(sizes[c], rank)) @ rng.normal(size=(rank, d))
                     + 20 * rng.normal(size=d))
    return x.astype(np.float32), y


def run(arm, seed, layers, epochs=(0,), sizes=None, strategy=UNKNOWN):
    """A run held in memory: `layers` maps a layer name to its width (rank min(2, width))."""
    arrays, y = {}, None
    for e in epochs:
        for i, (layer, width) in enumerate(layers.items()):
            seed_ = 1000 * (seed if isinstance(seed, int) else 7) + 10 * e + i
            x, y = affine_classes(d=width, rank=min(2, width), seed=seed_, sizes=sizes)
            arrays[("train", e, layer)] = x
    fs = MemoryFeatures(arrays, {"train": y}, name=f"{arm}-{seed}")
    return RunInfo(Path(f"{arm}-seed{seed}"), arm, strategy, seed, Status.UNKNOWN, None, fs)


def tables(runs):
    spectra, flat = analyze_features(runs, AnalysisConfig(epochs="all"))
    return spectra, flat, summarize(flat)


def analysis_of(runs):
    spectra, flat, summary = tables(runs)
    return Analysis(None, AnalysisConfig(epochs="all"), runs, spectra, flat, summary,
                    pd.DataFrame())


def report_of(runs, tmp_path, figures):
    build_report(analysis_of(runs), tmp_path, ReportOptions(embeddings=("pca",), figures=figures))
    return (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()


def legend_texts(fig):
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- 1: over training

def test_over_training_draws_round_off_as_exact_zero_and_skips_constant_panels(tmp_path):
    runs = [run(a, s, {"fc1": 5, "fc2": 6}, epochs=(0, 1, 2)) for a in ("erm", "mixup")
            for s in (0, 1)]
    _, _, summary = tables(runs)
    share = summary[summary["metric"] == "residual_variance_share"]
    assert (share["mean"] > 0).any() and share["mean"].max() < 1e-10  # round-off, not 0
    fig = epochs_figure(summary)
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.get_visible()]
    assert "residual variance share" not in ylabels  # 0 everywhere: no panel for it
    for ax in fig.axes:
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            assert not ((y != 0) & (np.abs(y) < 1e-10)).any(), ax.get_ylabel()
    skipped = constant_panels(summary, layers=["fc1", "fc2"])
    assert set(skipped["metric"]) >= {"residual_variance_share"}
    assert (skipped.loc[skipped["metric"] == "residual_variance_share", "value"] == 0).all()
    md, page = report_of(runs, tmp_path, ("epochs",))
    assert "residual variance share" in md and "constant" in md
    assert "residual variance share" in page


def test_an_over_training_figure_with_nothing_but_constants_is_left_out_and_said(tmp_path):
    # a 1-D layer: σ₁ alone, no σ₂…, effective rank 1, no variance beyond: only σ₁ moves
    runs = [run("erm", 0, {"unit": 1}, epochs=(0, 1))]
    _, _, summary = tables(runs)
    fig = epochs_figure(summary, metrics=("sum_other_singular_values", "effective_rank",
                                          "residual_variance_share"))
    assert fig is None
    fig = epochs_figure(summary)
    assert [ax.get_ylabel() for ax in fig.axes] == ["largest singular value"]
    # beside a 5-D layer the 1-D one keeps its column, its constant panels saying their value
    runs = [run("erm", 0, {"fc1": 5, "unit": 1}, epochs=(0, 1))]
    summary = tables(runs)[2]
    fig = epochs_figure(summary, metrics=("largest_singular_value", "effective_rank"))
    unit_rank = fig.axes[3]  # row: effective rank, column: unit
    assert not unit_rank.get_lines()
    assert [t.get_text() for t in unit_rank.texts] == ["1 at every epoch"]
    assert len(fig.axes[2].get_lines()) == 1  # effective rank at fc1 is drawn
    # features that did not change between the epochs: every panel constant
    x, y = affine_classes()
    still = MemoryFeatures({("train", e, "fc1"): x for e in (0, 1)}, {"train": y})
    frozen = [RunInfo(Path("frozen-seed0"), "frozen", UNKNOWN, 0, Status.UNKNOWN, None, still)]
    assert epochs_figure(tables(frozen)[2]) is None
    md, _ = report_of(frozen, tmp_path, ("epochs",))
    section = md.split("## Over training")[1]
    assert "constant over training, so there is no figure" in section
    assert "largest singular value at fc1" in section
    assert not (tmp_path / "epochs.png").exists()


def test_a_random_init_model_has_no_over_training_figure_and_the_page_says_why(tmp_path):
    runs = [run("random_init", 0, {"fc1": 5}, epochs=(0,))]
    _, _, summary = tables(runs)
    assert epochs_figure(summary) is None
    md, _ = report_of(runs, tmp_path, ("epochs", "heatmap", "spectra"))
    assert "One epoch per run was analysed" in md
    assert (tmp_path / "spectra.png").is_file()


# ---------------------------------------------------------------- 2: heat map

def test_one_arm_has_no_heat_map_and_the_page_says_so(tmp_path):
    runs = [run("erm", s, {"fc1": 5, "fc2": 4}) for s in (0, 1)]
    _, _, summary = tables(runs)
    assert heatmap_figure(summary, "effective_rank") is None
    md, page = report_of(runs, tmp_path, ("heatmap",))
    assert not (tmp_path / "heatmap.png").exists()
    assert "one arm" in md.lower() and "heat map" in md
    assert "heat map" in page


def test_two_models_with_different_layers_each_get_a_meaningful_row():
    runs = [run("resnet", 0, {"conv": 6, "fc": 4}), run("vit", 0, {"block1": 5, "head": 3})]
    _, _, summary = tables(runs)
    fig = heatmap_figure(summary, "largest_singular_value")
    ax = fig.axes[0]
    cells = np.ma.filled(ax.collections[0].get_array(), np.nan).reshape(2, 4)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["resnet", "vit"]
    for row in cells:  # each model's own layers are coloured (against the first arm there)
        assert np.isfinite(row).sum() == 2
    values = (summary[summary["metric"] == "largest_singular_value"]
              .set_index(["arm", "layer"])["mean"])
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 4  # every value written, none for the layers a model lacks
    assert sorted(texts) == sorted(number(v, 3) for v in values)


def test_heat_map_writes_values_and_ratios_without_exponent_noise():
    runs = [run(a, 0, {"fc1": 5, "unit": 1}) for a in ("erm", "mixup")]
    _, _, summary = tables(runs)
    fig = heatmap_figure(summary, "sum_other_singular_values")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("0") == 2  # a 1-D layer has no σ₂…: 0, written, not left blank
    assert not any("e-" in t for t in texts)
    bar = fig.axes[1]
    ticks = [t.get_text() for t in bar.get_yticklabels() if t.get_text()]
    assert len(set(ticks)) == len(ticks)  # no ×1 ×1 from too few digits


def test_heat_map_with_mathtext_names_draws_them_as_text():
    arm, layer = "a$x", "l$\\frac$"
    runs = [run(arm, 0, {layer: 5}), run("erm", 0, {layer: 5})]
    _, _, summary = tables(runs)
    fig = heatmap_figure(summary, "effective_rank")
    fig.savefig(io.BytesIO(), format="png")  # mathtext would fail here
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["erm", "a\\$x"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["l\\$\\frac\\$"]


# ---------------------------------------------------------------- 3, 4: spectra

def test_spectra_legend_has_every_arm_of_two_models_each_in_its_own_colour():
    runs = [run("resnet", 0, {"conv": 6}), run("vit", 0, {"block": 5})]
    spectra, _, _ = tables(runs)
    fig = spectra_figure(spectra)
    assert legend_texts(fig) == ["resnet", "vit"]
    colours = {line.get_label(): line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert colours["resnet"] != colours["vit"]


def test_eight_user_named_arms_get_eight_colours_in_arm_order():
    colours = arm_colors(EIGHT)
    assert len({mcolors.to_hex(c) for c in colours.values()}) == 8
    assert arm_colors(EIGHT[:3]) == {a: colours[a] for a in EIGHT[:3]}  # by order, not count
    with_erm = arm_colors(["erm", *EIGHT])
    assert mcolors.to_hex(with_erm["erm"]) not in {mcolors.to_hex(with_erm[a]) for a in EIGHT}
    runs = [run(a, 0, {"fc1": 4}) for a in EIGHT]
    spectra, _, _ = tables(runs)
    fig = spectra_figure(spectra)
    assert legend_texts(fig) == EIGHT
    drawn = {line.get_label(): mcolors.to_hex(line.get_color()) for line in fig.axes[0].get_lines()}
    assert drawn == {a: mcolors.to_hex(colours[a]) for a in EIGHT}


def test_log_spectra_mask_exact_zeros_instead_of_falling_off_a_cliff():
    # a class of two samples: one direction, every other σ exactly 0
    runs = [run("erm", 0, {"fc1": 6}, sizes=[2, 12, 12])]
    spectra, _, _ = tables(runs)
    two = spectra[(spectra["class"] == 0) & (spectra["layer"] == "fc1")]
    assert (two["singular_value"] == 0).sum() >= 1
    ax = plot_spectrum(two, log=True)
    y = np.asarray(ax.get_lines()[0].get_ydata(), dtype=float)
    assert np.isnan(y[two.sort_values("index")["singular_value"].to_numpy() == 0]).all()
    assert (y[np.isfinite(y)] > 0).all()


def test_spectra_have_few_integer_ticks_pooled_or_one_dimensional():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 40)
    x = rng.normal(size=(160, 64)).astype(np.float32)
    fs = MemoryFeatures({("train", 0, "wide"): x, ("train", 0, "unit"): x[:, :1]}, {"train": y})
    r = RunInfo(Path("erm-seed0"), "erm", "none", 0, Status.UNKNOWN, None, fs)
    spectra, _, _ = tables([r])
    fig = spectra_figure(spectra)
    fig.canvas.draw()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert 1 <= len(ticks) <= 7, ax.get_title()
        assert all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)


# ---------------------------------------------------------------- 5, 7: embeddings

def test_embeddings_name_the_arms_that_lack_the_layer(tmp_path):
    runs = [run("resnet", 0, {"conv": 6, "fc": 4}), run("vit", 0, {"block1": 5, "fc": 3})]
    found = embed_runs(runs, layer="conv")
    assert found.arms == ["resnet"]
    assert any("vit" in n and "conv" in n for n in found.notes)
    build_report(analysis_of(runs), tmp_path, ReportOptions(embeddings=("pca",),
                                                            embedding_layer="conv",
                                                            figures=("embeddings",)))
    md = (tmp_path / "report.md").read_text()
    assert "vit" in md.split("## Embeddings")[1]


def test_no_seed_unknown_in_figure_titles():
    runs = [run("erm", UNKNOWN, {"fc1": 5}), run("mixup", 3, {"fc1": 5})]
    data = embed_runs(runs, layer="fc1").data
    fig = plot_embeddings(data)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["erm", "mixup (seed 3)"]


# ---------------------------------------------------------------- 6: class colours

def test_class_colours_are_not_arm_colours():
    arms = {mcolors.to_hex(c) for c in arm_colors(["erm", "input_mixup", "manifold_mixup",
                                                    "dropout", *EIGHT]).values()}
    for n in (2, 3, 8, 12):
        assert not arms & {mcolors.to_hex(c) for c in class_colors(n)}, n
        assert len({mcolors.to_hex(c) for c in class_colors(n)}) == n


def _two_class_display():
    def proba(points):
        p1 = 1 / (1 + np.exp(-4 * points[:, 0]))
        return np.stack([1 - p1, p1], axis=1)
    data = np.random.default_rng(0).normal(size=(40, 2))
    return BoundaryDisplay.from_function(proba, data, resolution=12), data


def test_class_points_stand_out_on_their_own_class_region():
    display, data = _two_class_display()
    fig, ax = plt.subplots()
    labels = (data[:, 0] > 0).astype(int)
    scatter_classes(ax, data, labels)
    points = ax.collections[0]
    faces = points.get_facecolors()[:, :3]
    region = display.image("class")
    for k in (0, 1):
        region_colour = region[display.response("class") == k][0]
        face = faces[labels == k][0]
        assert np.abs(region_colour - face).max() > 0.2  # lighter than the point itself
    edges = points.get_edgecolors()[:, :3]
    assert (edges.max(axis=1) < 0.3).all()  # dark edges


def test_predicted_class_panels_name_the_classes():
    display, data = _two_class_display()
    labels = (data[:, 0] > 0).astype(int)
    grid = display.probabilities.reshape(-1, 2)
    resolution = display.probabilities.shape[0]
    xs = np.linspace(display.extent[0], display.extent[1], resolution)
    ys = np.linspace(display.extent[2], display.extent[3], resolution)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    fs = MemoryFeatures({("input_grid", 1, "input"): points,
                         ("input_grid", 1, "probabilities"): grid,
                         ("train", 1, "input"): data},
                        {"train": labels}, class_names=["left", "right"],
                        splits={"input_grid": {"kind": "grid", "space": "input",
                                               "resolution": resolution}})
    r = RunInfo(Path("erm-seed0"), "erm", "none", UNKNOWN, Status.UNKNOWN, None, fs)
    fig = boundaries([r])
    class_panel = fig.axes[0]
    assert class_panel.get_legend() is not None
    assert [t.get_text() for t in class_panel.get_legend().get_texts()] == ["left", "right"]
    assert "unknown" not in fig.axes[0].get_ylabel()
    assert fig.axes[0].get_ylabel() == "erm"


def test_corollary_figure_gives_every_arm_of_a_large_family_its_own_valid_colour():
    """A sweep family of ERM and eight manifold mixup arms (the flattening sweep's): each
    arm a shade of its strategy's colour, all within RGB [0, 1] and distinct (the shades
    once walked past white and the analysis died at the figure)."""
    from repflat.analysis.report.plotting.corollary import corollary_figure

    arms = ["erm-loss_x"] + [f"manifold_mixup-loss_x-alpha{a}-layers_{l}"
                             for a in (0.5, 1, 2, 4) for l in ("neck", "all")]
    rng = np.random.default_rng(0)
    rows = [{"run": f"{a}-seed{s}", "arm": a, "strategy": "none" if a.startswith("erm") else "manifold_mixup",
             "seed": s, "epoch": e, "along_spread": rng.uniform(0.01, 0.5),
             "across_spread": rng.uniform(0.1, 1), "excess_mixup_loss": rng.uniform(1e-3, 1)}
            for a in arms for s in range(2) for e in (100, 300)]
    fig, left_out = corollary_figure({"bottleneck": pd.DataFrame(rows)}, {arms[0]: arms}, {arms[0]})
    ax = fig.axes[0]
    drawn = {}
    for line in ax.get_lines():  # one line per mixing run, in its arm's colour
        drawn.setdefault(line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color()), 0)
    legend = fig.axes[1].get_legend()
    colours = [tuple(h.get_facecolor()[0][:3]) if h.get_facecolor().size else tuple(h.get_edgecolor()[0][:3])
               for h in legend.legend_handles]
    assert len(colours) == len(arms) and left_out == []
    assert all(0 <= c <= 1 for rgb in colours for c in rgb)
    assert len({tuple(round(c, 4) for c in rgb) for rgb in colours}) == len(arms)
    assert len(drawn) == len(arms) - 1  # ERM is drawn hollow, as points only
    plt.close(fig)
