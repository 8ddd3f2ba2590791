"""From saved features to the tidy spectra and flattening tables.

`spectra.csv`: one row per (run, layer, epoch, class, index) with its singular value;
class is the label as text, or "pooled" for all classes together (the control: the
paper finds no clear difference between strategies there).

`flattening.csv`: one row per (run, layer, epoch, class, metric) with its value:

| metric | per class | definition |
|---|---|---|
| n_samples | yes | rows of the class |
| largest_singular_value | yes, pooled | σ₁ |
| sum_other_singular_values | yes, pooled | Σ_{i≥2} σ_i |
| effective_rank | yes, pooled | Roy & Vetterli: exp(entropy of σ/Σσ) |
| numerical_rank | yes, pooled | #{σ_i > rtol·σ₁} |
| theory_dimension | yes | dim(H) − K + 1 (Corollary 1) |
| residual_variance_share | yes | share of σ² beyond the first theory_dimension |
| mean_first_singular_value | class "mean" | σ₁ averaged over classes (Appendix G) |
"""
from __future__ import annotations

from collections.abc import Sequence
import numpy as np
import pandas as pd

from analysis import metrics as M
from analysis.runs import run_columns
from analysis.spectra import class_spectra, singular_values
from repflat.config import AnalysisConfig
from repflat.errors import UserError, expected
from repflat.rundir import RunInfo

POOLED, MEAN = "pooled", "mean"
CLASS_METRICS = ("largest_singular_value", "sum_other_singular_values", "effective_rank",
                 "numerical_rank", "theory_dimension", "residual_variance_share")


def spectrum_metrics(s: np.ndarray, *, rtol: float) -> dict[str, float]:
    return {"largest_singular_value": M.largest_singular_value(s),
            "sum_other_singular_values": M.sum_other_singular_values(s),
            "effective_rank": M.effective_rank(s),
            "numerical_rank": M.numerical_rank(s, rtol)}


def layer_tables(features: np.ndarray, labels: np.ndarray, *, center: bool,
                 rtol: float) -> tuple[list[dict], list[dict]]:
    """Spectrum rows and metric rows of one layer's features (no run columns yet)."""
    spectra = class_spectra(features, labels, center=center)
    dim, K = features.shape[1], len(spectra)
    k_theory = M.theory_dimension(dim, K)
    srows, mrows = [], []
    for cls, s in [*spectra.items(), (POOLED, singular_values(features, center=center))]:
        srows += [{"class": str(cls), "index": i, "singular_value": float(v)} for i, v in enumerate(s)]
        values = spectrum_metrics(s, rtol=rtol)
        if cls != POOLED:
            values |= {"n_samples": int(np.sum(labels == cls)), "theory_dimension": k_theory,
                       "residual_variance_share": M.residual_variance_share(s, k_theory)}
        mrows += [{"class": str(cls), "metric": m, "value": float(v)} for m, v in values.items()]
    mean_first = float(np.mean([M.largest_singular_value(s) for s in spectra.values()]))
    mrows.append({"class": MEAN, "metric": "mean_first_singular_value", "value": mean_first})
    return srows, mrows


def plan(runs: Sequence[RunInfo], sel: AnalysisConfig) -> list[tuple[RunInfo, int, str]]:
    """The (run, epoch, layer) arrays `sel` asks for, every one checked to exist."""
    jobs = []
    for run in runs:
        fs = run.features
        if sel.split not in fs.label_paths:
            raise expected("--split", f"a split with labels in {run.path} "
                           f"({', '.join(sorted(fs.label_paths)) or 'none'})", sel.split)
        epochs = fs.epochs(sel.split)
        if not epochs:
            raise UserError(f"run {run.path}: no features saved for split {sel.split!r}")
        if sel.epochs == "final":
            epochs = epochs[-1:]
        layers = sel.layers or tuple(fs.layers(sel.split))
        for epoch in epochs:
            for layer in layers:
                fs.get(sel.split, epoch, layer)  # raises, listing what is saved, if absent
                jobs.append((run, epoch, layer))
    return jobs


def analyze_features(runs: Sequence[RunInfo], sel: AnalysisConfig = AnalysisConfig(),
                     progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The spectra and flattening frames of `runs` (see the module docstring).

    `progress`, if given, is called once per analysed array.
    """
    spectra, flat = [], []
    labels = {}
    for run, epoch, layer in plan(runs, sel):
        fs = run.features
        if run.run_id not in labels:
            labels[run.run_id] = fs.labels(sel.split)
        y = labels[run.run_id]
        x = fs.load(fs.get(sel.split, epoch, layer))
        if x.ndim != 2 or len(x) != len(y):
            raise expected(f"features {run.run_id}/{sel.split}/{epoch}/{layer}",
                           f"shape ({len(y)}, n_features) to match the labels", x.shape)
        srows, mrows = layer_tables(x, y, center=sel.center, rtol=sel.rtol)
        key = run_columns(run) | {"split": sel.split, "layer": layer, "epoch": epoch}
        spectra += [key | r for r in srows]
        flat += [key | r for r in mrows]
        if progress is not None:
            progress()
    return pd.DataFrame(spectra), pd.DataFrame(flat)


def summarize(flat: pd.DataFrame) -> pd.DataFrame:
    """Class-averaged metrics, then mean ± std over the seeds of each arm.

    Per-class metrics are averaged over classes first (giving `mean_first_singular_value`
    for σ₁); pooled-class metrics are kept apart with a `pooled_` prefix.
    """
    per_class = flat[~flat["class"].isin([POOLED, MEAN])]
    pooled = flat[flat["class"] == POOLED].assign(metric=lambda d: "pooled_" + d["metric"])
    keys = ["run", "arm", "strategy", "seed", "layer", "epoch", "metric"]
    per_run = pd.concat([per_class.groupby(keys, sort=False)["value"].mean().reset_index(),
                         pooled[keys + ["value"]]], ignore_index=True)
    out = (per_run.groupby(["arm", "strategy", "layer", "epoch", "metric"], sort=False)["value"]
           .agg(mean="mean", std="std", n_runs="count").reset_index())
    out["std"] = out["std"].fillna(0.0)
    return out
