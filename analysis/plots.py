"""Seaborn-style plotting functions: `plot_x(data, *, x=..., y=..., hue=..., ax=None) -> Axes`.

Each takes a tidy frame (analysis/flattening.py) and draws on `ax` (a new one if None).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from analysis.style import arm_colors, arm_order


def plot_spectrum(data: pd.DataFrame, *, x: str = "index", y: str = "singular_value",
                  hue: str = "arm", ax=None, log: bool = False, max_index: int | None = None):
    """Singular value against its index, one line per `hue`, band = ±1 std over the rows
    sharing (hue, x) — over seeds when `data` holds one class of one layer and epoch."""
    ax = ax or plt.subplots(figsize=(4.5, 3.2))[1]
    if max_index is not None:
        data = data[data[x] < max_index]
    order = arm_order(data[hue]) if hue == "arm" else None
    palette = arm_colors(order) if hue == "arm" else None
    sns.lineplot(data=data, x=x, y=y, hue=hue, hue_order=order, palette=palette,
                 errorbar="sd", marker="o", markersize=3, ax=ax)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("singular value index")
    ax.set_ylabel("singular value")
    return ax
