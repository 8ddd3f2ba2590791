"""Differences between arms over seeds, with intervals: how sure a comparison is.

`compare(values, baseline=...)` takes one value per (run, layer, epoch, metric) (the
frame `repflat.analysis.tidy.per_run` gives) and, for every other arm, layer and metric,
the difference of means against the baseline arm at each run's final epoch, with a
confidence interval:

- *paired t*, when the two arms share at least two seeds: the differences d_s =
  x_arm,s − x_base,s over the shared seeds s, mean d̄ and the interval
  d̄ ± t_{n−1, (1+level)/2} · sd(d)/√n (scipy.stats.t.interval), as
  `scipy.stats.ttest_rel(...).confidence_interval()` gives;
- *Welch t*, when they share fewer: the difference of the two means, the interval from
  `scipy.stats.ttest_ind(equal_var=False).confidence_interval()` (Welch–Satterthwaite);
- no interval (NaN) with fewer than 3 values on a side (3 pairs when paired): two seeds
  give an interval so wide it says nothing, and one gives none at all.

Every interval is a plain t interval per comparison: when many are drawn, some will
exclude 0 by chance; `count_note` says how many were drawn.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from repflat.analysis.tidy import final_epoch
from repflat.errors import unknown

MIN_SEEDS = 3
COLUMNS = ["layer", "metric", "arm", "baseline", "method", "n", "baseline_mean", "arm_mean",
           "difference", "ci_low", "ci_high", "relative", "level"]


def _scipy_stats():
    from scipy import stats  # here: importing it costs ~0.7 s, paid only when intervals are drawn

    return stats


def _interval(test, level: float) -> tuple[float, float]:
    ci = test.confidence_interval(confidence_level=level)
    return float(ci.low), float(ci.high)


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
            if np.ptp(d) == 0:  # no spread: the interval is the point (scipy says NaN)
                low = high = float(d[0])
            else:
                low, high = _interval(_scipy_stats().ttest_rel(arm.loc[shared], base.loc[shared]), level)
    else:
        out = {"method": "Welch t", "n": int(min(len(arm), len(base))),
               "baseline_mean": float(base.mean()), "arm_mean": float(arm.mean()),
               "difference": float(arm.mean() - base.mean())}
        low = high = np.nan
        if min(len(arm), len(base)) >= MIN_SEEDS and (arm.std() > 0 or base.std() > 0):
            low, high = _interval(_scipy_stats().ttest_ind(arm, base, equal_var=False), level)
    scale = abs(out["baseline_mean"])
    return out | {"ci_low": low, "ci_high": high, "level": level,
                  "relative": out["difference"] / scale if scale > 0 else np.nan}


def baseline_arm(values: pd.DataFrame) -> str:
    """ERM when there is one (strategy `none`, or an arm named erm, none or baseline),
    else the first arm in the fixed order."""
    from repflat.analysis.tidy import arm_order

    arms = arm_order(values["arm"])
    erm = [a for a in arms if a.lower() in ("erm", "none", "baseline")]
    if "strategy" in values:
        erm += [a for a in arms if set(values.loc[values["arm"] == a, "strategy"]) == {"none"}]
    return (erm or arms)[0]


def compare(values: pd.DataFrame, *, baseline: str | None = None, metrics=None,
            level: float = 0.95) -> pd.DataFrame:
    """Every arm against `baseline`, per layer and metric, at each run's final epoch.

    Parameters
    ----------
    values : DataFrame
        One value per (run, layer, epoch, metric): columns run, arm, seed, layer, epoch,
        metric, value (`repflat.analysis.tidy.per_run`).
    baseline : str, optional
        The arm compared against (default: `baseline_arm`); one that is not an arm of
        `values` is refused, with the close matches.
    metrics : iterable of str, optional
        Metrics to compare (default: all).
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        Columns COLUMNS: one row per (layer, metric, arm), the layers and arms in the
        order they come.
    """
    if values.empty:
        return pd.DataFrame(columns=COLUMNS)
    if baseline is not None and baseline not in set(values["arm"]):
        from repflat.analysis.tidy import arm_order

        raise unknown("baseline", str(baseline), arm_order(values["arm"]), what="arm")
    base = baseline or baseline_arm(values)
    data = final_epoch(values)
    if metrics is not None:
        data = data[data["metric"].isin(list(metrics))]
    rows = []
    for (layer, metric), block in data.groupby(["layer", "metric"], sort=False):
        by_arm = {a: g.set_index(g["seed"].astype(object).where(g["seed"].notna(), g["run"]))["value"]
                  for a, g in block.groupby("arm", sort=False)}
        if base not in by_arm:
            continue
        for arm, series in by_arm.items():
            if arm != base:
                rows.append({"layer": layer, "metric": metric, "arm": arm, "baseline": base,
                             **difference(series, by_arm[base], level=level)})
    return pd.DataFrame(rows, columns=COLUMNS)


def count_note(effects: pd.DataFrame) -> str:
    """How many intervals were drawn, and what that means for reading them."""
    n = int(effects["ci_low"].notna().sum())
    if not n:
        return "No intervals were drawn (fewer than three seeds per arm)."
    level = float(effects["level"].iloc[0])
    return (f"{n} intervals were drawn at {level:.0%} each, without correction for "
            f"multiple comparisons: about {(1 - level) * n:.1f} of them would exclude 0 by "
            "chance alone if no arm differed from the baseline.")
