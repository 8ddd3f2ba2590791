"""Sweep effects: each arm against the baseline point of the same swept values, with the
intervals scipy gives for the same numbers."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from repflat.analysis.effects import effects, effects_note, sweep_table
from repflat.config.grid import GridPoint

ARMS = ["erm-loss_ce", "erm-loss_mse", "mm-loss_ce-alpha1", "mm-loss_mse-alpha1",
        "mm-loss_mse-alpha2", "input_mixup"]
POINTS = {"erm-loss_ce": GridPoint("erm", {"train.loss": "ce"}),
          "erm-loss_mse": GridPoint("erm", {"train.loss": "mse"}),
          "mm-loss_ce-alpha1": GridPoint("mm", {"train.loss": "ce", "mixing.alpha": 1}),
          "mm-loss_mse-alpha1": GridPoint("mm", {"train.loss": "mse", "mixing.alpha": 1}),
          "mm-loss_mse-alpha2": GridPoint("mm", {"train.loss": "mse", "mixing.alpha": 2})}
STRATEGIES = {a: "none" if a.startswith("erm") else "manifold_mixup" for a in ARMS} | {
    "input_mixup": "input_mixup"}


def config(loss, alpha=None):
    return {"train": {"loss": loss, "lr": 0.1}, "mixing": {"alpha": alpha} if alpha else {}}


CONFIGS = {"erm-loss_ce": config("ce"), "erm-loss_mse": config("mse"),
           "mm-loss_ce-alpha1": config("ce", 1), "mm-loss_mse-alpha1": config("mse", 1),
           "mm-loss_mse-alpha2": config("mse", 2), "input_mixup": config("mse", 1)}


def values_frame(seeds_of=None, rng=np.random.default_rng(0)):
    rows = []
    for arm in ARMS:
        for seed in (seeds_of or {}).get(arm, range(4)):
            for epoch in (0, 10):  # only the final epoch counts
                for layer in ("fc1", "neck"):
                    rows.append({"run": f"{arm}-seed{seed}", "arm": arm, "strategy": STRATEGIES[arm],
                                 "seed": seed, "layer": layer, "epoch": epoch,
                                 "metric": "effective_rank", "value": rng.normal(3, 1)})
                    rows.append({**rows[-1], "metric": "n_samples", "value": 100.0})
    return pd.DataFrame(rows)


def test_each_point_is_matched_with_the_baseline_of_its_loss():
    sweep = sweep_table(ARMS, STRATEGIES, CONFIGS, POINTS)
    assert list(sweep.columns) == ["arm", "template", "baseline", "train.loss", "mixing.alpha"]
    base = dict(zip(sweep["arm"], sweep["baseline"]))
    assert base["mm-loss_ce-alpha1"] == "erm-loss_ce"
    assert base["mm-loss_mse-alpha1"] == base["mm-loss_mse-alpha2"] == "erm-loss_mse"
    assert base["input_mixup"] == "erm-loss_mse"  # unswept, matched by its resolved loss
    assert pd.isna(base["erm-loss_ce"]) and pd.isna(base["erm-loss_mse"])
    # an arm no single baseline point matches (its config says nothing) gets none
    assert pd.isna(sweep_table(ARMS, STRATEGIES, {}, POINTS)["baseline"].iloc[-1])


def test_without_a_grid_every_arm_is_compared_with_erm():
    sweep = sweep_table(["erm", "mm", "im"], {"erm": "none", "mm": "m", "im": "i"}, {}, {})
    assert list(sweep["baseline"].fillna("-")) == ["-", "erm", "erm"]


def test_paired_differences_and_intervals_match_scipy():
    values = values_frame()
    table = effects(values, sweep_table(ARMS, STRATEGIES, CONFIGS, POINTS))
    assert set(table["metric"]) == {"effective_rank"}  # counts are no effects
    assert len(table) == 2 * 4  # 2 layers × 4 compared arms
    row = table[(table["arm"] == "mm-loss_mse-alpha2") & (table["layer"] == "neck")].iloc[0]
    final = values[(values["epoch"] == 10) & (values["layer"] == "neck")
                   & (values["metric"] == "effective_rank")]
    arm = final[final["arm"] == "mm-loss_mse-alpha2"].set_index("seed")["value"]
    base = final[final["arm"] == "erm-loss_mse"].set_index("seed")["value"]
    ci = stats.ttest_rel(arm, base).confidence_interval(0.95)
    assert row["method"] == "paired t" and row["n_seeds"] == 4
    assert row["diff"] == pytest.approx((arm - base).mean())
    assert (row["low"], row["high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert (row["train.loss"], row["mixing.alpha"], row["template"]) == ("mse", 2, "mm")


def test_disjoint_seeds_give_welch_intervals():
    values = values_frame({"mm-loss_ce-alpha1": [5, 6, 7, 8]})
    table = effects(values, sweep_table(ARMS, STRATEGIES, CONFIGS, POINTS))
    row = table[(table["arm"] == "mm-loss_ce-alpha1") & (table["layer"] == "fc1")].iloc[0]
    final = values[(values["epoch"] == 10) & (values["layer"] == "fc1")
                   & (values["metric"] == "effective_rank")]
    arm = final.loc[final["arm"] == "mm-loss_ce-alpha1", "value"]
    base = final.loc[final["arm"] == "erm-loss_ce", "value"]
    ci = stats.ttest_ind(arm, base, equal_var=False).confidence_interval(0.95)
    assert row["method"] == "Welch t"
    assert (row["low"], row["high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_the_note_counts_the_intervals():
    table = effects(values_frame({"mm-loss_ce-alpha1": [0, 1]}),  # two seeds: no interval
                    sweep_table(ARMS, STRATEGIES, CONFIGS, POINTS))
    assert table["low"].notna().sum() == 6
    assert effects_note(table, drawn=2).startswith(
        "effects.csv holds 6 intervals (the figure draws 2 of them), each at 95%")


def effects_rows():
    rows = []
    for loss in ("ce", "mse"):
        for alpha in (0.5, 1, 2, 4):
            for layer in ("fc1", "neck"):
                diff = alpha / 10 + (loss == "mse")
                rows.append({"layer": layer, "metric": "effective_rank", "arm": f"mm-{loss}-{alpha}",
                             "template": "mm", "train.loss": loss, "mixing.alpha": alpha,
                             "baseline": f"erm-{loss}", "n_seeds": 3, "baseline_mean": 1.0,
                             "arm_mean": 1.0 + diff, "diff": diff,
                             "low": np.nan if alpha == 4 else diff - 0.1, "high": np.nan if alpha == 4 else diff + 0.2,
                             "relative": diff, "method": "paired t", "level": 0.95})
    return pd.DataFrame(rows)


def test_the_effects_plot_draws_each_line_with_its_intervals():
    import matplotlib.pyplot as plt

    from repflat.analysis.report.plotting.effects import plot_effects
    from repflat.analysis.report.sweep import drawn, effects_frame, effects_figure, x_key

    table = effects_rows()
    assert x_key(table) == "mixing.alpha"  # the number, not the loss
    data = effects_frame(table, "mixing.alpha")
    assert sorted(set(data["line"])) == ["mm loss=ce", "mm loss=mse"]
    fig, ax = plt.subplots()
    plot_effects(data[data["layer"] == "neck"], x="mixing.alpha", hue="line", ax=ax)
    assert ax.get_xscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "1", "2", "4"]
    lines = [c for c in ax.containers]
    assert len(lines) == 2
    for container, loss in zip(lines, ("ce", "mse")):
        ys = container.lines[0].get_ydata()
        want = table[(table["layer"] == "neck") & (table["train.loss"] == loss)]
        assert np.allclose(ys, want["diff"])
        segments = container.lines[2][0].get_segments()  # one vertical bar per point
        spans = [(s[0][1], s[1][1]) for s in segments]
        assert np.allclose(spans, list(zip(want["low"].fillna(want["diff"]), want["high"].fillna(want["diff"]))))
    plt.close(fig)
    assert drawn(table) == 12  # 2 losses × 3 α with an interval × 2 layers
    figure = effects_figure(table)
    assert figure is not None and len(figure.axes) == 2
    plt.close(figure)
    assert effects_figure(table.drop(columns=["mixing.alpha", "train.loss"])) is None
