"""similarity.csv: how different each arm's representation is from the baseline's, beside
how different two seeds of the same arm are.

At each run's final epoch of the analysed split and at every layer the runs share:

- `baseline`: arm A seed s against the baseline arm (ERM, `stats.baseline_arm`) seed s,
  for every seed both have;
- `seed_to_seed`: arm A seed s against arm A seed s' (s < s'), for every arm, the
  baseline included: the reference an arm-vs-baseline value is read against (similarity
  grows with width and depth, so a raw score means little alone).

Metrics (repflat.analysis.similarity): `cka`, `cka_debiased`, `procrustes`, `angular`
(streamed from row sums) and `rsa_spearman` (on at most `RDM_MAX_ROWS` rows, evenly
spaced, the same ones on both sides).

Two runs are compared only when their rows are the same samples in the same order: same
labels and same dataset indices (`FeatureSet.indices`) for the split; other pairs are
skipped and a note says which. Columns: layer, epoch, comparison, arm, seed, other_arm,
other_seed, metric, value. `similarity_summary` gives, per (layer, arm, comparison,
metric), the mean over pairs with a t interval.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from repflat.analysis import similarity as S
from repflat.analysis.tidy import arm_order
from repflat.config import AnalysisConfig
from repflat.rundir.run import RunInfo

BASELINE, SEEDS = "baseline", "seed_to_seed"
METRICS = ("cka", "cka_debiased", "procrustes", "angular", "rsa_spearman")
TITLES = {"cka": "linear CKA", "cka_debiased": "debiased CKA", "procrustes": "Procrustes distance",
          "angular": "angular distance", "rsa_spearman": "RSA (Spearman)"}
COLUMNS = ["layer", "epoch", "comparison", "arm", "seed", "other_arm", "other_seed", "metric", "value"]


def pair_similarity(x, y) -> dict[str, float]:
    """Every metric of `METRICS` for two feature sets of the same samples."""
    moments = S.cross_moments(x, y)
    cos = S.shape_cosine(moments)
    rows = np.arange(len(x))
    if len(rows) > S.RDM_MAX_ROWS:
        rows = rows[np.linspace(0, len(rows) - 1, S.RDM_MAX_ROWS).round().astype(int)]
    return {"cka": S.cka_from_moments(moments),
            "cka_debiased": S.cka_from_moments(moments, debiased=True),
            "procrustes": S.procrustes_from_cosine(cos), "angular": S.angular_from_cosine(cos),
            "rsa_spearman": S.rdm_correlation(np.asarray(x[rows]), np.asarray(y[rows]))}


def _pairs(runs: list[RunInfo], baseline: str | dict | None) -> list[tuple[str, RunInfo, RunInfo]]:
    """(comparison, run, other run): each arm against its baseline (one arm for all, or
    {arm: baseline} as a sweep's effects pair them) at the same seed, and each arm's seeds
    against each other."""
    by_arm: dict[str, dict[int, RunInfo]] = {}
    for r in runs:
        if isinstance(r.seed, int) and not isinstance(r.seed, bool):
            by_arm.setdefault(r.name, {})[r.seed] = r
    pairs = []
    for arm in arm_order(by_arm):
        seeds = by_arm[arm]
        base = baseline.get(arm) if isinstance(baseline, dict) else baseline
        if base is not None and arm != base and base in by_arm:
            pairs += [(BASELINE, seeds[s], by_arm[base][s]) for s in sorted(seeds)
                      if s in by_arm[base]]
        pairs += [(SEEDS, seeds[a], seeds[b]) for a, b in combinations(sorted(seeds), 2)]
    return pairs


def _same_samples(a: RunInfo, b: RunInfo, split: str) -> bool:
    fa, fb = a.features, b.features
    la, lb = fa.labels(split), fb.labels(split)
    return la.shape == lb.shape and bool(np.all(la == lb)) and bool(np.all(fa.indices(split) == fb.indices(split)))


def similarity_table(runs: list[RunInfo], sel: AnalysisConfig = AnalysisConfig(), *,
                     baseline: str | dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """similarity.csv of `runs` (module docstring) and the notes for the report.

    Parameters
    ----------
    runs : list of RunInfo
        The analysed runs; those without an integer seed are not paired.
    sel : AnalysisConfig
        Its split and layers (default: every layer the paired runs share).
    baseline : str or dict, optional
        The arm the others are compared with, or {arm: its baseline} (a sweep's pairs, from
        effects.csv: ERM at the same swept values, model and data); default:
        `stats.baseline_arm`. An arm without a baseline gets its seed-to-seed pairs only.

    Returns
    -------
    (DataFrame, list of str)
    """
    from repflat.analysis.stats import baseline_arm

    notes: list[str] = []
    runs = [r for r in runs if sel.split in r.features.label_splits()]
    if not runs:
        return pd.DataFrame(columns=COLUMNS), notes
    if baseline is None:
        baseline = baseline_arm(pd.DataFrame({"arm": [r.name for r in runs],
                                              "strategy": [r.strategy for r in runs]}))
    rows, skipped = [], []
    for comparison, a, b in _pairs(runs, baseline):
        if not _same_samples(a, b, sel.split):
            skipped.append(f"{a.run_id} / {b.run_id}")
            continue
        ea, eb = a.features.epochs(sel.split)[-1], b.features.epochs(sel.split)[-1]
        shared = [l for l in a.features.layers(sel.split) if l in b.features.layers(sel.split)]
        for layer in [l for l in (sel.layers or shared) if l in shared]:
            x = a.features.load(a.features.get(sel.split, ea, layer), mmap=True)
            y = b.features.load(b.features.get(sel.split, eb, layer), mmap=True)
            for metric, value in pair_similarity(x, y).items():
                rows.append({"layer": layer, "epoch": ea, "comparison": comparison, "arm": a.name,
                             "seed": a.seed, "other_arm": b.name, "other_seed": b.seed,
                             "metric": metric, "value": value})
    if skipped:
        notes.append(f"Similarity: {len(skipped)} pair(s) of runs were not compared because their "
                     f"{sel.split} rows are not the same samples in the same order (labels or "
                     f"dataset indices differ): {', '.join(skipped)[:300]}")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("seed", "other_seed", "epoch"):
        frame[column] = frame[column].astype("Int64")
    return frame, notes


def similarity_summary(frame: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Per (layer, arm, comparison, metric): mean over the pairs, their range (min, max),
    a t interval (mean ± t_{n−1} · sd/√n, scipy.stats.t.interval; NaN with fewer than 2
    pairs) and n_pairs. Seed-to-seed pairs share runs, so they are not independent: the interval is
    narrower than an honest one, a description of the spread, not a test."""
    from scipy import stats

    if frame.empty:
        return pd.DataFrame(columns=["layer", "arm", "comparison", "metric", "mean", "min", "max",
                                     "low", "high", "n_pairs"])
    out = []
    for (layer, arm, comparison, metric), g in frame.groupby(
            ["layer", "arm", "comparison", "metric"], sort=False):
        v = g["value"].dropna().to_numpy(dtype=float)
        mean = float(v.mean()) if len(v) else float("nan")
        low = high = float("nan")
        if len(v) >= 2:
            sem = v.std(ddof=1) / np.sqrt(len(v))
            low, high = (stats.t.interval(level, len(v) - 1, loc=mean, scale=sem) if sem > 0
                         else (mean, mean))
        out.append({"layer": layer, "arm": arm, "comparison": comparison, "metric": metric,
                    "mean": mean, "min": float(v.min()) if len(v) else float("nan"),
                    "max": float(v.max()) if len(v) else float("nan"),
                    "low": float(low), "high": float(high), "n_pairs": len(v)})
    return pd.DataFrame(out)
