"""`compare`: every arm of an analysis against a baseline arm, for a user's own
runs or an analysis read back (the table effects.csv holds, computed by
repflat.analysis.effects against the baseline you name).

Its own module because it sits above both the pipeline (which writes effects.csv with
repflat.analysis.effects) and the effects engine: effects never reaches back up.
"""
from __future__ import annotations

import pandas as pd

from repflat.analysis.effects import effects, sweep_table
from repflat.analysis.pipeline import grid_points, sweep_effects
from repflat.analysis.results import Analysis
from repflat.analysis.runs import on_disk
from repflat.analysis.tidy import arm_order, per_run
from repflat.config.grid import GridPoint
from repflat.errors import expected, public, unknown


@public
def compare(result, *, baseline: str | None = None, metrics=None, level: float = 0.95) -> pd.DataFrame:
    """Every arm of an analysis against a baseline arm, with seed-paired intervals.

    Per layer and metric, at each run's final epoch: the table effects.csv holds
    (`repflat.analysis.effects.effects`, the one comparison engine), against the baseline
    you name.

    Parameters
    ----------
    result : Analysis
        What `repflat.analysis.compute` returns (or `pipeline.load` reads back).
    baseline : str, optional
        An arm (or an experiment arm's template, whose points are matched by swept value).
        Default: ERM (strategy "none", or an arm named erm), else the first arm. A name
        that is no arm is refused, with the close matches.
    metrics : iterable of str, optional
        Metrics to compare (default: all but the counts and theory_dimension).
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        `effects`'s columns: layer, metric, arm, template, the swept keys, baseline,
        n_seeds, baseline_mean, arm_mean, diff (arm − baseline), low, high (paired t over
        shared seeds, Welch otherwise, NaN below three seeds), relative, method, level.
    """
    if not isinstance(result, Analysis):
        raise expected("result", "an Analysis (what repflat.analysis.compute returns)",
                       type(result).__name__)
    runs = result.runs
    if not runs:  # tables read back without their runs: their arms and swept values
        return _compare_tables(result, baseline, metrics, level)
    experiments = {r.path.parent.parent for r in runs if on_disk(r)}
    points = grid_points(sorted(experiments))
    valid = list(dict.fromkeys([*(r.name for r in runs), *(p.template for p in points.values())]))
    if baseline is not None and baseline not in valid:
        raise unknown("baseline", str(baseline), valid, what="arm")
    return sweep_effects(runs, result.flat, points, baseline=baseline, metrics=metrics, level=level)


def _compare_tables(result, baseline, metrics, level) -> pd.DataFrame:
    values = per_run(result.flat) if len(result.flat) else result.flat
    arms = arm_order(values["arm"]) if len(values) else []
    if baseline is not None and baseline not in arms:
        raise unknown("baseline", str(baseline), arms, what="arm")
    frame = result.effects
    params = [c for c in frame.columns[frame.columns.get_loc("template") + 1:
                                         frame.columns.get_loc("baseline")]] if len(frame) else []
    points = {row["arm"]: GridPoint(row["template"], {p: row[p] for p in params if pd.notna(row[p])})
              for row in frame.drop_duplicates("arm").to_dict("records")} if len(frame) else {}
    strategies = dict(zip(values["arm"], values["strategy"])) if len(values) else {}
    sweep = sweep_table(arms, strategies, {}, points, baseline=baseline)
    return effects(values, sweep, metrics=metrics, level=level)
