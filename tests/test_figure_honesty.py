"""Figures that name what they show and keep colours (issue 21): the data behind each
figure (titles, legend labels, line colours, ydata, axis scales, the band's outline) of a
sweep, where one arm stands for its strategy and arms of one strategy sit side by side."""
import dataclasses

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from seaborn.external import husl

from repflat.analysis import metrics as M
from repflat.analysis.report.build import ReportOptions, build_report
from repflat.analysis.report.figures import constant_note, constant_panels, epochs_figure, heatmap_figure, spectra_figure
from repflat.analysis.report.plotting.plots import plot_spectrum
from repflat.analysis.report.plotting.style import COLOURS, PALETTE, arm_colors, class_colors
from repflat.analysis.report.sweep import effects_figure
from repflat.analysis.report.tables import flattening_table
from repflat.analysis.report.toy import figure1
from repflat.analysis.runs import collect_runs
from repflat.analysis.layers import analyze_features
from repflat.config import AnalysisConfig
from tests.test_figure_cases import analysis_of, run, tables

SWEEP = ["erm", "input_mixup", "manifold_mixup-alpha0.5", "manifold_mixup-alpha2",
         "manifold_mixup-alpha8"]
STRATEGY = {"erm": "none", "input_mixup": "input_mixup", **{a: "manifold_mixup" for a in SWEEP[2:]}}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def hex_(c):
    return mcolors.to_hex(c)


def hue(c):
    return husl.rgb_to_husl(*mcolors.to_rgb(c))[0]


def hue_gap(a, b):
    return abs((a - b + 180) % 360 - 180)


# ---------------------------------------------------------------- 1, 2: names and colours

@pytest.fixture(scope="module")
def swept(trained_runs):
    """The tiny trained runs, manifold mixup renamed as a sweep's first arm would be."""
    runs, _, _ = collect_runs(list(trained_runs.values()))
    runs = [dataclasses.replace(r, name="manifold_mixup-alpha0.5") if r.strategy == "manifold_mixup"
            else r for r in runs]
    spectra, _ = analyze_features(runs, AnalysisConfig(layers=("fc1", "bottleneck", "fc2")))
    return runs, spectra


def test_figure1_names_the_arm_and_seed_of_each_one_run_panel(swept):
    runs, spectra = swept
    fig = figure1(runs, spectra, layers=("fc1", "fc2"))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("(a) ERM") and "seed 0" in titles[0]
    for title in (titles[1], titles[4]):  # (b) and (e): which manifold mixup arm, which seed
        assert "manifold_mixup-alpha0.5" in title and "seed 0" in title, title
    assert "seed 0" in titles[3]


def test_figure1_spectra_are_on_a_log_axis_in_strategy_colours(swept):
    runs, spectra = swept
    fig = figure1(runs, spectra, layers=("fc1", "fc2"))
    for ax in (fig.axes[2], fig.axes[5]):
        assert ax.get_yscale() == "log", ax.get_title()
        drawn = {t.get_text(): hex_(line.get_color())
                 for t, line in zip(ax.get_legend().get_texts(), ax.get_lines())}
        assert drawn["manifold_mixup-alpha0.5"] == hex_(PALETTE[COLOURS["manifold_mixup"]])
        assert drawn["none"] == hex_(PALETTE[COLOURS["none"]])


def test_swept_arms_are_ordered_shades_of_their_strategy_colour():
    colours = arm_colors(SWEEP, STRATEGY)
    assert colours["erm"] == PALETTE[COLOURS["none"]]
    assert colours["input_mixup"] == PALETTE[COLOURS["input_mixup"]]
    shades = [colours[a] for a in SWEEP[2:]]
    assert len({hex_(c) for c in shades}) == 3
    green = PALETTE[COLOURS["manifold_mixup"]]
    others = {s: PALETTE[i] for s, i in COLOURS.items() if s != "manifold_mixup"}
    for c in shades:  # the strategy's hue, nearer to it than to any other strategy's
        assert hue_gap(hue(c), hue(green)) < 3
        assert all(hue_gap(hue(c), hue(green)) < hue_gap(hue(c), hue(o)) for o in others.values())
        assert all(np.abs(np.subtract(c, o)).max() > 0.15 for o in [*others.values(), *class_colors(8)])
    lightness = [husl.rgb_to_husl(*c)[2] for c in shades]
    assert lightness == sorted(lightness, reverse=True)  # light to dark along the sweep
    assert min(np.diff(lightness[::-1])) > 5
    # a name that is a strategy's keeps its colour without being told (other tools' features)
    assert arm_colors(["manifold_mixup", "erm"]) == {"manifold_mixup": green, "erm": colours["erm"]}


def test_many_swept_arms_stay_distinct_valid_shades():
    arms = [f"mm-{i}" for i in range(9)]
    colours = arm_colors(arms, {a: "manifold_mixup" for a in arms})
    assert len({hex_(c) for c in colours.values()}) == 9
    assert all(0 <= v <= 1 for c in colours.values() for v in c)


def test_spectra_figure_draws_a_sweep_in_shades_of_its_strategy():
    runs = [run(a, s, {"fc1": 5}, strategy=STRATEGY[a]) for a in SWEEP for s in (0, 1)]
    spectra, _, _ = tables(runs)
    fig = spectra_figure(spectra)
    want = {a: hex_(c) for a, c in arm_colors(SWEEP, STRATEGY).items()}
    drawn = {line.get_label(): hex_(line.get_color()) for line in fig.axes[0].get_lines()}
    assert drawn == want
    green = PALETTE[COLOURS["manifold_mixup"]]
    assert all(hue_gap(hue(drawn[a]), hue(green)) < 3 for a in SWEEP[2:])


def effects_rows(templates):
    rows = []
    for template, strategy in templates.items():
        for alpha in (0.5, 2.0, 8.0):
            rows.append({"layer": "fc1", "metric": "along_spread", "arm": f"{template}-alpha{alpha:g}",
                         "template": template, "mixing.alpha": alpha, "baseline": "erm", "n_seeds": 3,
                         "baseline_mean": 1.0, "arm_mean": 0.9, "diff": -0.1, "low": -0.2,
                         "high": 0.0, "relative": -0.1, "method": "paired t", "level": 0.95})
    return pd.DataFrame(rows)


def test_effects_figure_draws_each_strategy_in_its_colour():
    # the first line took the palette's first colour: manifold mixup in ERM's blue
    effects = effects_rows({"manifold_mixup": "manifold_mixup"})
    fig = effects_figure(effects)
    (line,) = fig.axes[0].get_lines()[:1]
    assert hex_(line.get_color()) == hex_(PALETTE[COLOURS["manifold_mixup"]])
    # templates named by the user: their runs' strategies decide
    effects = effects_rows({"mine": "input_mixup", "deep": "manifold_mixup"})
    strategies = {a: ("input_mixup" if a.startswith("mine") else "manifold_mixup")
                  for a in effects["arm"]}
    fig = effects_figure(effects, strategies=strategies)
    legend = fig.legends[0]
    drawn = {t.get_text(): hex_(h.lines[0].get_color() if hasattr(h, "lines") else h.get_color())
             for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert drawn == {"mine": hex_(PALETTE[COLOURS["input_mixup"]]),
                     "deep": hex_(PALETTE[COLOURS["manifold_mixup"]])}


# ---------------------------------------------------------------- 3: heat map

def test_heat_map_falls_back_to_a_scale_free_metric_and_says_so(tmp_path):
    runs = [run(a, 0, {"fc1": 5}, strategy=STRATEGY[a]) for a in SWEEP[:3]]
    build_report(analysis_of(runs), tmp_path, ReportOptions(embeddings=(), figures=("heatmap",)))
    md = (tmp_path / "report.md").read_text().split("## Strategy × layer")[1]
    assert "effective\\_rank (scale-free" in md  # the caption names the metric and its scale
    raw = tmp_path / "raw"
    raw.mkdir()
    build_report(analysis_of(runs), raw, ReportOptions(embeddings=(), figures=("heatmap",),
                                                       metric="sum_other_singular_values"))
    assert "sum\\_other\\_singular\\_values (raw, not scale-free" in (raw / "report.md").read_text()


# ---------------------------------------------------------------- 4: NA where vacuous

def test_variance_beyond_the_corollary_dimension_is_undefined_where_vacuous():
    s = np.array([4.0, 3.0])
    assert M.residual_variance_share(s, 1) == pytest.approx(9 / 25)
    assert np.isnan(M.residual_variance_share(s, 2))  # no direction beyond k = r
    assert np.isnan(M.residual_variance_share([4.0, 3.0, 0.0], 1, max_rank=1))
    assert M.residual_variance_share([4.0, 3.0, 0.0], 1, max_rank=2) == pytest.approx(9 / 25)


def wide_small_classes(arm, seed, epochs=(0, 1)):
    # K = 3, eight samples per class (centred rank ≤ 7): at width 12 dim(H) − K + 1 = 10 ≥ 7,
    # vacuous; at width 3 it is 1 < 3, a share to measure (of rank-2 classes: not 0)
    return run(arm, seed, {"wide": 12, "fc": 3}, epochs=epochs, sizes=[8, 8, 8],
               strategy=STRATEGY.get(arm, "none"))


def test_vacuous_corollary_reads_NA_in_tables_and_figures_not_0(tmp_path):
    runs = [wide_small_classes(a, s) for a in ("erm", "input_mixup") for s in (0, 1)]
    _, flat, summary = tables(runs)
    share = summary[summary["metric"] == "residual_variance_share"]
    assert share.loc[share["layer"] == "wide", "mean"].isna().all()  # not 0
    assert share.loc[share["layer"] == "fc", "mean"].notna().all()
    assert (share.loc[share["layer"] == "fc", "mean"] > 0.01).all()
    table = flattening_table(summary, ["wide", "fc"])
    column = table.set_index("layer")["variance beyond dim(H)−K+1"]
    assert set(column.loc["wide"]) == {"NA"}
    assert "NA" not in set(column.loc["fc"])
    # over training: the panel says NA, it draws no line at 0
    fig = epochs_figure(summary)
    rows = [ax for ax in fig.axes if ax.get_ylabel() == "residual variance share"]
    assert rows, [ax.get_ylabel() for ax in fig.axes]
    row = fig.axes[fig.axes.index(rows[0]):fig.axes.index(rows[0]) + 2]  # wide, fc
    assert not row[0].get_lines()
    assert [t.get_text() for t in row[0].texts] == ["NA at every epoch (undefined)"]
    assert "0 at every epoch" not in [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "(NA: undefined)" in constant_note(constant_panels(summary))
    # the heat map writes NA where the value is undefined, not a blank or a 0
    heat = heatmap_figure(summary, "residual_variance_share").axes[0]
    texts = [t.get_text() for t in heat.texts]
    assert texts.count("NA") == 2 and "0" not in texts


# ---------------------------------------------------------------- 5: bands on a log axis

def test_log_spectrum_band_stays_within_the_seeds_range():
    # two seeds whose second value differs by a factor of 100: std > mean − 0
    rows = [{"arm": "erm", "seed": s, "index": i, "singular_value": v}
            for s, values in enumerate(([10.0, 5.0, 1.0], [10.0, 0.05, 0.01]))
            for i, v in enumerate(values)]
    data = pd.DataFrame(rows)
    ax = plot_spectrum(data, log=True)
    outline = ax.collections[0].get_paths()[0].vertices
    low = data.groupby("index")["singular_value"].min()
    high = data.groupby("index")["singular_value"].max()
    for i in (1, 2):  # along each index the band spans exactly [min, max] over the seeds
        ys = outline[np.isclose(outline[:, 0], i), 1]
        assert np.isclose(ys.min(), low[i]) and np.isclose(ys.max(), high[i]), (i, ys)
    assert ax.get_ylim()[0] < low.min()  # the floor lies below every band
