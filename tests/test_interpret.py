"""The report's "What this shows", on constructed tables: a clear effect, no effect, one
seed, and an effect the pooled control explains."""
import numpy as np
import pandas as pd

from repflat.analysis.report.interpret import interpretation
from repflat.analysis.results import Analysis
from repflat.analysis.tidy import summarize
from repflat.config import AnalysisConfig


def analysis(values: dict, seeds=(0, 1, 2, 3, 4), layer: str = "fc1") -> Analysis:
    """values: {arm: {metric: callable(seed) -> value}}; pooled_ metrics become pooled rows."""
    rows = []
    for arm, metrics in values.items():
        for seed in seeds:
            for metric, f in metrics.items():
                pooled = metric.startswith("pooled_")
                rows.append({"run": f"{arm}-seed{seed}", "arm": arm,
                             "strategy": "none" if arm == "erm" else "manifold_mixup", "seed": seed,
                             "split": "train", "layer": layer, "epoch": 10,
                             "group": "pooled" if pooled else "class", "class": pd.NA if pooled else 0,
                             "class_name": pd.NA if pooled else "0",
                             "metric": metric.removeprefix("pooled_"), "value": float(f(seed))})
    flat = pd.DataFrame(rows).astype({"class": "Int64", "seed": "Int64"})
    spectra = pd.DataFrame({"layer": [layer]})
    return Analysis("t", AnalysisConfig(), [], spectra, flat, summarize(flat), pd.DataFrame())


noise = np.random.default_rng(0).normal(size=(10,)) * 0.05


def test_a_clear_effect_with_the_control_unmoved_and_flatter_shape():
    findings, cautions = interpretation(analysis({
        "erm": {"sum_other_singular_values": lambda s: 10 + noise[s], "effective_rank": lambda s: 6 + noise[s],
                "pooled_sum_other_singular_values": lambda s: 100 + noise[s]},
        "mm": {"sum_other_singular_values": lambda s: 8 + noise[s + 5], "effective_rank": lambda s: 5 + noise[s + 5],
               "pooled_sum_other_singular_values": lambda s: 100 + noise[s + 5]}}))
    text = " ".join(findings)
    assert "At fc1, Σ σ₂… is smallest under mm: 8" in text and "against 10" in text
    assert "95% CI" in text and "paired t over 5 seeds" in text and "may be noise" not in text
    # the pooled control is reported, never read as proof either way: scale is a gauge
    assert "it changes by +0%" in text or "it changes by -0%" in text
    assert "inside the noise" not in text
    assert "how each class spreads" not in text and "overall scale" not in text
    assert "flatter in shape" in text
    assert not any("Fewer than 3 seeds" in c for c in cautions)
    assert any("intervals were drawn at 95% each" in c for c in cautions)


def test_no_effect_says_the_interval_includes_zero():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, 5), rng.normal(10, 1, 5)
    findings, _ = interpretation(analysis({
        "erm": {"sum_other_singular_values": lambda s: a[s] + 0.3},
        "mm": {"sum_other_singular_values": lambda s: b[s]}}))
    text = " ".join(findings)
    assert "smallest under mm" in text and "paired t over 5 seeds): inside the noise" in text


def test_one_seed_gives_no_interval_and_says_so():
    findings, cautions = interpretation(analysis({
        "erm": {"sum_other_singular_values": lambda s: 10.0},
        "mm": {"sum_other_singular_values": lambda s: 8.0}}, seeds=(0,)))
    assert findings == ["At fc1, Σ σ₂… is smallest under mm: 8 against 10 for erm (-2; no interval "
                        "with 1 seed)."]
    assert any(c.startswith("Fewer than 3 seeds (erm: 1, mm: 1)") for c in cautions)
    assert any("No intervals were drawn" in c for c in cautions)


def test_a_pooled_control_that_moves_as_much_is_reported_with_the_gauge_not_called_scale():
    """Raw σ and the pooled control both change under h → c·h (next layer ÷ c), which
    changes no prediction: "the control moves as much, so it is scale" was a conclusion
    the numbers cannot carry (issue 17), so the sentence reports them and the gauge."""
    findings, _ = interpretation(analysis({
        "erm": {"sum_other_singular_values": lambda s: 10 + noise[s],
                "pooled_sum_other_singular_values": lambda s: 100 + noise[s]},
        "mm": {"sum_other_singular_values": lambda s: 8 + noise[s + 5],
               "pooled_sum_other_singular_values": lambda s: 78 + noise[s + 5]}}))
    text = " ".join(findings)
    assert "it changes by -22%" in text and "(per class: -20%)" in text
    assert "overall scale, not flatter classes" not in text and "flatter" not in text
    from repflat.analysis.report.interpret import GAUGE
    assert "a gauge of the loss" in GAUGE and "not read as flattening" in GAUGE


def test_the_baseline_keeping_the_least_spread_is_said_with_the_next_arm_s_interval():
    """'no arm flattens this layer's classes further' was said of differences of 0.2–0.4
    against seed std 0.6–1.3 (issue 21): the next smallest arm is compared with the
    baseline, and a difference inside the noise is called that."""
    findings, _ = interpretation(analysis({
        "erm": {"sum_other_singular_values": lambda s: 5.0 + noise[s]},
        "mm": {"sum_other_singular_values": lambda s: 8.0 + noise[s + 5]}}))
    assert findings[0].startswith("At fc1, Σ σ₂… is smallest under erm, the baseline: 5.002")
    assert "against 8.006 for mm, the next smallest (3.004, 95% CI 2.948 to 3.061" in findings[0]
    assert "inside the noise" not in findings[0] and "flattens" not in findings[0]
    shift = [2.0, -1.5, 1.8, -1.2, 0.1]  # mm larger on average (+0.24), far inside its spread
    findings, _ = interpretation(analysis({
        "erm": {"sum_other_singular_values": lambda s: 5.0 + noise[s]},
        "mm": {"sum_other_singular_values": lambda s: 5.0 + noise[s] + shift[s]}}))
    assert "smallest under erm, the baseline" in findings[0]
    assert findings[0].endswith("paired t over 5 seeds): inside the noise.")


def test_the_numbers_of_a_comparison_share_the_place_its_interval_allows():
    """'27.1 against 29.9 (−2.8, 95% CI −4.9 to −0.7 …)', not '27.10 against 29.90 (−2.80,
    95% CI −4.85 to −0.748 …)': every number of one sentence to the decimal place of the
    interval half-width's second significant digit, as mean ± std are in the tables."""
    from repflat.analysis.report.interpret import _ci, _shown

    row = pd.Series({"diff": -2.8012, "low": -4.8537, "high": -0.74811, "n_seeds": 3,
                     "level": 0.95, "method": "paired t", "baseline_mean": 29.903, "arm_mean": 27.102})
    show = _shown(row)  # half-width 2.05: two significant digits reach the first decimal
    assert (show(row["arm_mean"]), show(row["baseline_mean"])) == ("27.1", "29.9")
    assert _ci(row) == "(-2.8, 95% CI -4.9 to -0.7, paired t over 3 seeds)"
    wide = pd.Series({**row, "low": -310.0, "high": 250.0, "diff": -30.4})  # ± 280
    assert _ci(wide) == "(-30, 95% CI -310 to 250, paired t over 3 seeds)"
    none = pd.Series({**row, "low": np.nan, "high": np.nan})
    assert _ci(none) == "(-2.80; no interval with 3 seeds)"  # 3 significant digits


def test_a_layer_the_baseline_lacks_is_said_not_compared():
    """A grid over models (MNIST-1D's baselines: logistic regression has no hidden layer)
    crashed the report with a KeyError on the baseline."""
    a = analysis({"mm": {"sum_other_singular_values": lambda s: 8.0 + noise[s]},
                  "ix": {"sum_other_singular_values": lambda s: 9.0 + noise[s]}})
    a.flat = a.flat[a.flat["arm"] == "mm"]
    a.flat = pd.concat([a.flat, a.flat.assign(arm="ix", run=a.flat["run"].str.replace("mm", "ix"),
                                              value=a.flat["value"] + 1)], ignore_index=True)
    mm = a.flat[a.flat["arm"] == "mm"]
    rows = mm.assign(arm="erm", strategy="none", layer="other", run=mm["run"].str.replace("mm", "erm"))
    flat = pd.concat([a.flat, rows], ignore_index=True)
    findings, _ = interpretation(Analysis("t", AnalysisConfig(), [], pd.DataFrame({"layer": ["fc1", "other"]}),
                                          flat, summarize(flat), pd.DataFrame()))
    assert "At fc1, Σ σ₂… is smallest under mm (8.0" in findings[0]
    assert "the baseline, erm, has no fc1 to compare with" in findings[0]
