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
