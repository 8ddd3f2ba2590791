"""Differences between arms over seeds, with intervals: how sure a comparison is.

The one comparison engine. `paired_differences(values, pairs)` takes one value per (run,
layer, epoch, metric) (the frame `repflat.analysis.tidy.per_run` gives) and pairs of
(arm, baseline) and gives, per layer and metric, the difference of means at each run's
final epoch with a confidence interval (`difference`):

- *paired t*, when the two arms share at least two seeds: the differences d_s =
  x_arm,s − x_base,s over the shared seeds s, mean d̄ and the interval
  d̄ ± t_{n−1, (1+level)/2} · sd(d)/√n (scipy.stats.t.interval), as
  `scipy.stats.ttest_rel(...).confidence_interval()` gives;
- *Welch t*, when they share fewer: the difference of the two means, the interval from
  `scipy.stats.ttest_ind(equal_var=False).confidence_interval()` (Welch–Satterthwaite);
- no interval (NaN) with fewer than 3 values on a side (3 pairs when paired): two seeds
  give an interval so wide it says nothing, and one gives none at all.

`compare(values, baseline=...)` pairs every arm with one baseline;
`repflat.analysis.effects` pairs a sweep's points with the baseline trained at the same
swept values. Both give the schema effects.csv holds (RESULT_COLUMNS after layer,
metric, arm and any carried columns), which the pipeline computes once and the report
reads. Every interval is a plain t interval per comparison: when many are drawn, some
will exclude 0 by chance; `count_note` says how many were drawn.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from repflat.analysis.tidy import final_epoch
from repflat.errors import unknown
from repflat.rundir.names import STRATEGIES

MIN_SEEDS = 3
RESULT_COLUMNS = ["baseline", "n_seeds", "baseline_mean", "arm_mean", "diff", "low", "high",
                  "relative", "method", "level"]
NOT_EFFECTS = ("n_samples", "pooled_n_samples", "theory_dimension")
"""Counts and the theory's dimension: properties of the data and the layer, not effects."""


def _scipy_stats():
    from scipy import stats  # here, paid only when intervals are drawn (its import time: benchmarks/cli_latency.py --imports)

    return stats


def _interval(test, level: float) -> tuple[float, float]:
    ci = test.confidence_interval(confidence_level=level)
    return float(ci.low), float(ci.high)


def _quiet(test, *args, **kwargs):
    """`test(*args)` without scipy's warning that nearly identical values lose precision:
    such a spread is rounding, and the interval it gives is as narrow as it should be; the
    warning would reach a report's reader as noise on stderr."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        return test(*args, **kwargs)


def difference(arm: pd.Series, base: pd.Series, *, level: float = 0.95) -> dict:
    """The difference of `arm` against `base` (each a Series of values indexed by seed):
    paired over shared seeds when there are two or more, else Welch; the interval as in
    the module docstring (NaN below MIN_SEEDS).

    Parameters
    ----------
    arm, base : Series
        One value per seed (the index), e.g. a metric of each run at its final epoch.
    level : float, default 0.95
        Confidence level of the interval.

    Returns
    -------
    dict
        method ("paired t", "Welch t"), n (pairs, or the smaller side), baseline_mean,
        arm_mean, difference, ci_low, ci_high, relative (difference / |baseline mean|,
        NaN when that is 0), level.
    """
    arm, base = arm.dropna(), base.dropna()
    shared = arm.index.intersection(base.index)
    if len(shared) >= 2:
        d = (arm.loc[shared] - base.loc[shared]).to_numpy(dtype=float)
        out = {"method": "paired t", "n": len(d), "baseline_mean": float(base.loc[shared].mean()),
               "arm_mean": float(arm.loc[shared].mean()), "difference": float(d.mean())}
        low = high = np.nan
        if len(d) >= MIN_SEEDS:
            # No spread beyond rounding (a count, a rank): the interval is the point; scipy
            # says NaN at none, and warns of cancellation at a spread of a few ulps.
            if np.ptp(d) <= 1e-12 * np.abs(d).max():
                low = high = float(d.mean())
            else:
                low, high = _interval(_quiet(_scipy_stats().ttest_rel, arm.loc[shared], base.loc[shared]), level)
    else:
        out = {"method": "Welch t", "n": int(min(len(arm), len(base))),
               "baseline_mean": float(base.mean()), "arm_mean": float(arm.mean()),
               "difference": float(arm.mean() - base.mean())}
        low = high = np.nan
        if min(len(arm), len(base)) >= MIN_SEEDS and (arm.std() > 0 or base.std() > 0):
            low, high = _interval(_quiet(_scipy_stats().ttest_ind, arm, base, equal_var=False), level)
    scale = abs(out["baseline_mean"])
    return out | {"ci_low": low, "ci_high": high, "level": level,
                  "relative": out["difference"] / scale if scale > 0 else np.nan}


def baseline_arm(values: pd.DataFrame) -> str:
    """The baseline strategy's arm when there is one (repflat.config.strategies: ERM,
    strategy `none`, or an arm named by it or an alias: erm, none, baseline), else the
    first arm in the declared order."""
    from repflat.analysis.tidy import arm_order

    arms = arm_order(values["arm"])
    baselines = [s for s in STRATEGIES if s.baseline]
    base = [a for a in arms if any(a.lower() in (s.name, *s.aliases) for s in baselines)]
    if "strategy" in values:
        base += [a for a in arms if set(values.loc[values["arm"] == a, "strategy"])
                 in [{s.name} for s in baselines]]
    return (base or arms)[0]


def paired_differences(values: pd.DataFrame, pairs: pd.DataFrame, *, metrics=None,
                       level: float = 0.95) -> pd.DataFrame:
    """Each (arm, baseline) of `pairs`, per layer and metric, at each run's final epoch.

    Parameters
    ----------
    values : DataFrame
        One value per (run, layer, epoch, metric): columns run, arm, seed, layer, epoch,
        metric, value (`repflat.analysis.tidy.per_run`).
    pairs : DataFrame
        Columns arm and baseline, and any others to carry into each result row (a sweep's
        template and swept values); one row per arm compared.
    metrics : iterable of str, optional
        Metrics to compare (default: all but NOT_EFFECTS, which are no effects).
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        One row per (layer, metric, arm) that both arms have: layer, metric, arm, the
        carried columns, then RESULT_COLUMNS: baseline, n_seeds (pairs when paired),
        baseline_mean, arm_mean, diff = arm − baseline, low, high (the interval; NaN
        below three seeds), relative (diff / |baseline_mean|), method, level.
    """
    carried = [c for c in pairs.columns if c not in ("arm", "baseline")]
    columns = ["layer", "metric", "arm", *carried, *RESULT_COLUMNS]
    data = final_epoch(values) if len(values) else values
    if data.empty or pairs.empty:
        return pd.DataFrame(columns=columns)
    data = data[data["metric"].isin(list(metrics))] if metrics is not None else data[
        ~data["metric"].isin(NOT_EFFECTS)]
    rows = []
    for (layer, metric), block in data.groupby(["layer", "metric"], sort=False):
        by_arm = {a: g.set_index(g["seed"].astype(object).where(g["seed"].notna(), g["run"]))["value"]
                  for a, g in block.groupby("arm", sort=False)}
        for pair in pairs.to_dict("records"):
            arm, base = pair["arm"], pair["baseline"]
            if arm not in by_arm or base not in by_arm:
                continue
            d = difference(by_arm[arm], by_arm[base], level=level)
            rows.append({"layer": layer, "metric": metric, "arm": arm,
                         **{c: pair[c] for c in carried}, "baseline": base, "n_seeds": d["n"],
                         "baseline_mean": d["baseline_mean"], "arm_mean": d["arm_mean"],
                         "diff": d["difference"], "low": d["ci_low"], "high": d["ci_high"],
                         "relative": d["relative"], "method": d["method"], "level": d["level"]})
    return pd.DataFrame(rows, columns=columns)


def compare(values: pd.DataFrame, *, baseline: str | None = None, metrics=None,
            level: float = 0.95) -> pd.DataFrame:
    """Every arm against one `baseline` (default `baseline_arm`): `paired_differences`
    of each arm of `values` with it; a baseline that is not an arm of `values` is
    refused, with the close matches."""
    from repflat.analysis.tidy import arm_order

    arms = arm_order(values["arm"]) if len(values) else []
    if baseline is not None and baseline not in arms:
        raise unknown("baseline", str(baseline), arms, what="arm")
    base = baseline or (baseline_arm(values) if arms else None)
    pairs = pd.DataFrame({"arm": [a for a in arms if a != base], "baseline": base},
                         columns=["arm", "baseline"])
    return paired_differences(values, pairs, metrics=metrics, level=level)


def count_note(effects: pd.DataFrame) -> str:
    """How many intervals were drawn, and what that means for reading them."""
    n = int(effects["low"].notna().sum()) if len(effects) else 0
    if not n:
        return "No intervals were drawn (fewer than three seeds per arm)."
    level = float(effects["level"].iloc[0])
    return (f"{n} intervals were drawn at {level:.0%} each, without correction for "
            f"multiple comparisons: about {(1 - level) * n:.1f} of them would exclude 0 by "
            "chance alone if no arm differed from the baseline.")
