"""The verdict's reading of each arm, on constructed tables: flattening at a minimiser,
collapse, less spread along, a change of scale only, and a difference inside the noise."""
import numpy as np
import pandas as pd

from repflat.analysis.report.verdict import verdict
from repflat.analysis.results import Analysis
from repflat.analysis.tidy import summarize
from repflat.config import AnalysisConfig

SEEDS = (0, 1, 2, 3, 4)
wobble = np.random.default_rng(0).normal(size=20) * 0.01


def analysis(arms: dict, excess: dict | None = None) -> Analysis:
    """arms: {arm: {metric: value}}, every seed the value plus a small seed-specific wobble;
    excess: {arm: final excess mixup loss} logged in training.csv."""
    rows, training = [], []
    for arm, metrics in arms.items():
        for seed in SEEDS:
            run = f"{arm}-seed{seed}"
            for i, (metric, value) in enumerate(metrics.items()):
                rows.append({"run": run, "arm": arm, "strategy": "none" if arm == "erm" else "manifold_mixup",
                             "seed": seed, "split": "train", "layer": "fc1", "epoch": 10,
                             "group": "class", "class": 0, "class_name": "0", "metric": metric,
                             "value": value * (1 + wobble[seed + 5 * (i % 3)])})
            if excess and arm in excess:
                training.append({"run": run, "arm": arm, "strategy": "manifold_mixup", "seed": seed,
                                 "epoch": 10, "excess_mixup_loss": excess[arm]})
    flat = pd.DataFrame(rows).astype({"class": "Int64", "seed": "Int64"})
    return Analysis("t", AnalysisConfig(), [], pd.DataFrame({"layer": ["fc1"]}), flat,
                    summarize(flat), pd.DataFrame(training))


def geometry(along, across=1.0, collapsed=0.0, raw=10.0):
    return {"along_spread": along, "across_spread": across, "collapsed": collapsed,
            "sum_other_singular_values": raw, "largest_singular_value": raw,
            "effective_rank": 3.0}


def one(arms, excess=None) -> str:
    said = verdict(analysis(arms, excess))
    assert len(said) == 1 and said[0].startswith("Layer fc1, against erm")
    return said[0]


def test_flattening_needs_the_premise_and_collapse_is_named():
    arms = {"erm": geometry(0.30), "mm": geometry(0.01), "mm2": geometry(0.01, 0.01, 1.0)}
    near = one(arms, {"mm": 0.001, "mm2": 0.002})
    assert "flattening at a minimiser of the mixup loss, as Corollary 1 says — mm (Δ along -0.29" in near
    assert "collapse, every class a point (which Corollary 1 allows) — mm2" in near
    far = one(arms, {"mm": 0.2, "mm2": 0.2})
    assert "less spread along the discriminative directions than erm — mm (Δ along -0.29" in far
    assert "flattening at a minimiser" not in far


def test_raw_statistics_that_move_alone_are_a_change_of_scale_only():
    said = one({"erm": geometry(0.30, raw=10.0), "mm": geometry(0.30, raw=5.0)})
    assert "a change of scale only" in said and "mm (Δ along" in said and "-50%" in said


def test_a_difference_inside_the_noise_is_said_to_be_noise():
    arms = {"erm": geometry(0.30), "mm": geometry(0.30)}
    rows = analysis(arms)
    flat = rows.flat
    jitter = flat["arm"].eq("mm") & flat["metric"].eq("along_spread")
    flat.loc[jitter, "value"] += np.array([0.1, -0.12, 0.09, -0.1, 0.05])  # mean +0.004, spread 0.1
    said = verdict(Analysis("t", AnalysisConfig(), [], rows.spectra, flat, summarize(flat), pd.DataFrame()))[0]
    assert "no detectable change (inside the noise) — mm (Δ along" in said
    assert "5 seeds each" in said
