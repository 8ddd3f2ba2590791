"""Several data sets in one experiment: which runs share a data set, and test NLL and
calibration per cell (the data set × arm grid of boundaries is `toy.dataset_grid`).

Runs belong to the same data set when their configs' `data` sections are equal (an
experiment's `datasets` names its runs `<data set>.<arm>`; arms that override `data`
work too). A grid needs at least two data sets; with one, the per-arm figures say it all.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from repflat.analysis.report.tables import mean_std
from repflat.analysis.stats import difference
from repflat.analysis.tidy import arm_order, final_epoch
from repflat.rundir.run import RunInfo


def cells(runs: list[RunInfo]) -> pd.DataFrame:
    """One row per run: `run`, `dataset` and `cell` (its arm within the data set), in the
    order the experiment lists them; empty when the runs have fewer than two data sets."""
    keys = {}
    for r in runs:
        data = (r.config or {}).get("data")
        keys[r.run_id] = json.dumps(data, sort_keys=True) if isinstance(data, dict) else None
    groups = list(dict.fromkeys(k for k in keys.values() if k is not None))
    if len(groups) < 2:
        return pd.DataFrame(columns=["run", "dataset", "cell"])
    rows = []
    for key in groups:
        members = [r for r in runs if keys[r.run_id] == key]
        prefixes = {r.name.partition(".")[0] for r in members}
        shared = len(prefixes) == 1 and all("." in r.name for r in members)
        label = prefixes.pop() if shared else _data_label(json.loads(key))
        for r in members:
            rows.append({"run": r.run_id, "dataset": label,
                         "cell": r.name.partition(".")[2] if shared else r.name})
    return pd.DataFrame(rows)


def _data_label(data: dict) -> str:
    """A data set without a shared run-name prefix: its name and label noise."""
    noise = data.get("label_noise") or 0
    return f"{data.get('name', '?')}" + (f" ({noise:.0%} label noise)" if noise else "")


def cell_metrics(training: pd.DataFrame, where: pd.DataFrame) -> pd.DataFrame:
    """Each run's final-epoch test measures joined to its data set and cell."""
    if training.empty or where.empty or "test_nll" not in training.columns:
        return pd.DataFrame()
    last = final_epoch(training)
    return last.merge(where, on="run")


def calibration_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Rows (data set, arm): test accuracy, test NLL and ECE at the final epoch, mean ± std
    over seeds (ECE only where training recorded it: evaluation.calibration)."""
    rows = []
    for dataset in dict.fromkeys(metrics["dataset"]):
        part = metrics[metrics["dataset"] == dataset]
        for cell in arm_order(part["cell"]):
            c = part[part["cell"] == cell]
            row = {"data set": dataset, "arm": cell, "strategy": c["strategy"].iloc[0], "seeds": len(c)}
            for column, title in (("test_accuracy", "test accuracy"), ("test_nll", "test NLL"),
                                  ("test_ece", "test ECE")):
                if column in c.columns and c[column].notna().any():
                    row[title] = mean_std(c[column].mean(), c[column].std(), int(c[column].notna().sum()))
            rows.append(row)
    return pd.DataFrame(rows)


def mixup_sentences(metrics: pd.DataFrame, baseline: str = "none",
                    against: str = "manifold_mixup") -> list[str]:
    """Per data set: the `against` strategy's test NLL and ECE minus the baseline's, paired
    over seeds with a 95% t interval (repflat.analysis.stats.difference)."""
    out = []
    for dataset in dict.fromkeys(metrics["dataset"]):
        part = metrics[metrics["dataset"] == dataset]
        base, arm = part[part["strategy"] == baseline], part[part["strategy"] == against]
        if base.empty or arm.empty:
            continue
        if "cell" in part.columns and (base["cell"].nunique() > 1 or arm["cell"].nunique() > 1):
            continue  # several ERM or mixing arms (a grid over models): no one pair per seed;
            # the effects table compares each point with its own baseline
        said = []
        for column, title in (("test_nll", "test NLL"), ("test_ece", "ECE")):
            if column not in part.columns or arm[column].isna().all():
                continue
            d = difference(arm.set_index("seed")[column], base.set_index("seed")[column])
            ci = ("" if np.isnan(d["ci_low"]) else
                  f", 95% interval [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] ({d['method']}, n = {d['n']})")
            said.append(f"{title} {d['baseline_mean']:.3f} → {d['arm_mean']:.3f} "
                        f"({d['difference']:+.3f}{ci})")
        if said:
            out.append(f"{dataset}: ERM → {against.replace('_', ' ')}: " + "; ".join(said) + ".")
    return out
