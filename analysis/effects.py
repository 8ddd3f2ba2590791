"""Effects of a sweep: every arm against the baseline arm trained at the same swept values.

An experiment's `grid` (repflat.config.grid) expands arms into points such as
`manifold_mixup-loss_mse-alpha2`. A point is compared with the baseline arm (ERM, see
`repflat.analysis.stats.baseline_arm`) and, when the baseline is itself swept (over
`train.loss`, say), with the baseline point whose resolved config agrees on every key
the baseline sweeps: an mse arm against ERM trained with mse, over the same seeds.

`sweep_table` says, per arm, where it came from (`template`), its swept values (one
column per dotted key) and its `baseline`; `effects` gives, per layer and metric, the
difference arm − baseline at each run's final epoch with the seed-paired interval of
`repflat.analysis.stats.difference` (paired t over shared seeds, Welch otherwise, none
below three seeds). Every interval is a plain per-comparison interval: `effects_note`
says how many were drawn. (`repflat.analysis.compare` is the user's door to it.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from repflat.analysis.stats import NOT_EFFECTS, RESULT_COLUMNS, baseline_arm, paired_differences

__all__ = ["NOT_EFFECTS", "RESULT_COLUMNS", "effects", "effects_note", "sweep_table"]
_MISSING = object()


def lookup(config: dict | None, key: str):
    """The value of dotted `key` in a plain config mapping; a sentinel when absent (a
    field the strategy does not use is left out of a resolved config)."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return tuple(node) if isinstance(node, list) else node


def sweep_table(arms: list[str], strategies: dict[str, str], configs: dict[str, dict],
                points: dict, *, baseline: str | None = None) -> pd.DataFrame:
    """One row per arm: arm, template, baseline (NaN for the baseline's own arms, and for
    an arm no single baseline point matches), and one column per swept key.

    Parameters
    ----------
    arms : list of str
        The arms, in the order the tables show them.
    strategies : dict
        {arm: mixing strategy} ("none" marks ERM).
    configs : dict
        {arm: resolved run config as plain data}; used to match an arm with the baseline
        point of the same values (an arm without one matches only an unswept baseline).
    points : dict
        {arm: repflat.config.grid.GridPoint} of the experiment's expanded arms.
    baseline : str, optional
        The baseline: an arm template (its points matched by swept value, as the default
        is) or one arm, against which every other arm is compared. Default:
        `repflat.analysis.stats.baseline_arm` of the templates.
    """
    template = {a: points[a].template if a in points else a for a in arms}
    keys = list(dict.fromkeys(k for a in arms if a in points for k in points[a].values))
    frame = pd.DataFrame({"arm": list(template.values()),
                          "strategy": [strategies.get(a, "unknown") for a in arms]})
    base = baseline if baseline is not None else baseline_arm(frame) if arms else None
    one = base in arms and base not in template.values()  # one point of a swept template
    own = [base] if one else [a for a in arms if template[a] == base]
    varied = [] if one else list(dict.fromkeys(k for a in own if a in points for k in points[a].values))
    if len({repr(lookup(configs.get(b), "data")) for b in own}) > 1:
        varied.append("data")  # baselines on several data sets: compare within each one
    rows = []
    for arm in arms:
        match = [b for b in own if all(lookup(configs.get(b), k) == lookup(configs.get(arm), k)
                                       for k in varied)]
        compared = arm != base if one else template[arm] != base
        row = {"arm": arm, "template": template[arm],
               "baseline": match[0] if compared and len(match) == 1 else np.nan}
        values = points[arm].values if arm in points else {}
        rows.append(row | {k: values.get(k, np.nan) for k in keys})
    return pd.DataFrame(rows, columns=["arm", "template", "baseline", *keys])


def effects(values: pd.DataFrame, sweep: pd.DataFrame, *, metrics=None,
            level: float = 0.95) -> pd.DataFrame:
    """Each arm of `sweep` with a baseline, against it, per layer and metric: the one
    engine (`repflat.analysis.stats.paired_differences`) with the sweep's template and
    swept keys carried.

    Parameters
    ----------
    values : DataFrame
        One value per (run, layer, epoch, metric) (`repflat.analysis.tidy.per_run`); each
        run's final epoch is used.
    sweep : DataFrame
        `sweep_table`'s frame: arm, template, baseline and the swept keys.
    metrics : iterable of str, optional
        Metrics to compare (default: all but the counts and theory_dimension).
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        One row per (layer, metric, arm): layer, metric, arm, template, the swept keys,
        then `stats.RESULT_COLUMNS` (baseline, n_seeds, baseline_mean, arm_mean, diff,
        low, high, relative, method, level).
    """
    return paired_differences(values, sweep.dropna(subset=["baseline"]), metrics=metrics,
                              level=level)


def effects_note(effects: pd.DataFrame, drawn: int | None = None) -> str:
    """How many intervals effects.csv holds (and the figure draws), and what that means."""
    n = int(effects["low"].notna().sum()) if len(effects) else 0
    if not n:
        return "effects.csv holds no intervals (fewer than three seeds per arm)."
    level = float(effects["level"].iloc[0])
    shown = f" (the figure draws {drawn} of them)" if drawn is not None else ""
    return (f"effects.csv holds {n} intervals{shown}, each at {level:.0%} without correction "
            f"for multiple comparisons: if no arm differed from its baseline, about "
            f"{(1 - level) * n:.0f} of them would exclude 0 by chance alone. Read a single "
            "interval excluding 0 as a lead, a pattern over α, layers and losses as evidence.")
