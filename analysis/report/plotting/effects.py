"""Effect sizes against a swept parameter, with their intervals (axes-level)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from repflat.analysis.report.plotting.style import PALETTE, literal


def is_numeric(values: pd.Series) -> bool:
    """Whether a swept key's values are numbers (placed on a numeric axis)."""
    return bool(len(values.dropna())) and pd.to_numeric(values.dropna(), errors="coerce").notna().all()


def plot_effects(data: pd.DataFrame, *, x: str, y: str = "diff", hue: str,
                 low: str = "low", high: str = "high", colors: dict | None = None, ax=None):
    """One line per `hue` of `y` (an effect, arm − baseline) against `x`, with the interval
    [low, high] as error bars where there is one, and a line at 0 (no effect).

    A numeric `x` spanning a factor of 4 or more is drawn on a log₂ axis (α = 0.5 … 4);
    text values are placed in the order they come. Lines of different hues are dodged
    sideways a little so that their bars do not hide each other. `colors` gives each
    `hue` its colour (the figure passes its strategy's, `arm_colors`); default: the
    palette in turn. A panel whose every value is NaN (a quantity undefined there, such
    as the variance beyond dim(H) − K + 1 where the corollary is vacuous) says "NA".

    Returns
    -------
    matplotlib Axes
    """
    ax = ax or plt.gca()
    numeric = is_numeric(data[x])
    if numeric:
        xs = pd.to_numeric(data[x]).astype(float)
        log = bool((xs > 0).all() and xs.max() / xs.min() >= 4)
        if log:
            ax.set_xscale("log", base=2)
        ticks = sorted(set(xs))
    else:
        ticks = list(dict.fromkeys(data[x].astype(str)))
        xs, log = data[x].astype(str).map({t: i for i, t in enumerate(ticks)}).astype(float), False
    hues = list(dict.fromkeys(data[hue]))
    for i, name in enumerate(hues):
        rows = data[data[hue] == name].assign(_x=xs).sort_values("_x")
        shift = (i - (len(hues) - 1) / 2) * 0.06
        pos = rows["_x"] * 2 ** shift if log else rows["_x"] + shift * (
            (max(ticks) - min(ticks)) / 4 if numeric and len(ticks) > 1 else 1)
        err = np.vstack([rows[y] - rows[low], rows[high] - rows[y]])
        ax.errorbar(pos, rows[y], yerr=np.where(np.isnan(err), 0, err), marker="o", ms=4,
                    capsize=2, lw=1.2, label=literal(name),
                    color=(colors or {}).get(name, PALETTE[i % len(PALETTE)]))
    if len(data) and data[y].isna().all():
        ax.text(0.5, 0.5, "NA (undefined)", transform=ax.transAxes, ha="center", va="center",
                color="0.35")
    ax.axhline(0, color="0.3", lw=0.8, ls="--")
    ax.set_xticks(ticks if numeric else range(len(ticks)))
    ax.set_xticklabels([f"{t:g}" if numeric else literal(t) for t in ticks])
    ax.set_xlabel(literal(x))
    ax.set_ylabel(literal(f"{y} (arm − baseline)"))
    return ax
