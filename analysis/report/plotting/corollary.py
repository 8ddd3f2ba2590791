"""Corollary 1's spreads against the premise (axes-level)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from repflat.analysis.report.corollary import short_names
from repflat.analysis.report.plotting.style import literal


def plot_against_premise(data: pd.DataFrame, *, x: str = "excess_mixup_loss", y: str = "along_spread",
                         hue: str = "arm", colors: dict | None = None, reference: set | None = None,
                         ax=None):
    """`y` against `x` (log scale), one line per run through its analysed epochs (later
    epochs further left as the excess falls), the final epoch marked; arms in `reference`
    (ERM) drawn as hollow markers at their final epoch only.

    Returns
    -------
    matplotlib Axes
    """
    ax = ax or plt.gca()
    reference = reference or set()
    arms = list(dict.fromkeys(data[hue]))
    for i, arm in enumerate(arms):
        color = (colors or {}).get(arm, f"C{i % 10}")
        block = data[data[hue] == arm]
        for j, (_, run) in enumerate(block.groupby("run", sort=False)):
            run = run.sort_values("epoch")
            label = literal(arm) if j == 0 else None
            if arm in reference:
                last = run.iloc[-1]
                ax.scatter([last[x]], [last[y]], s=30, facecolors="none", edgecolors=color,
                           lw=1.2, label=label, zorder=3)
                continue
            ax.plot(run[x], run[y], color=color, lw=0.8, alpha=0.6)
            ax.scatter(run[x].iloc[-1:], run[y].iloc[-1:], s=16, color=color, label=label, zorder=3)
    positive = data[x][data[x] > 0]
    if len(positive) == len(data) and len(data) and positive.max() > 10 * positive.min():
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log span collide
    ax.set_xlabel(literal(f"{x} (nats or squared units)"))
    ax.set_ylabel(literal(f"{y.replace('_', ' ')} ÷ separation"))
    ax.set_ylim(bottom=0, top=max(float(np.nanmax(data[y])) * 1.05, 1e-3) if len(data) else 1)
    return ax


MAX_ROWS = 10
"""Rows of the Corollary 1 figure; further (layer, family) pairs are named in the report."""


def corollary_figure(frames: dict[str, pd.DataFrame], families: dict[str, list[str]],
                     reference: set[str]):
    """One row per (layer, family of arms compared with one baseline), at most MAX_ROWS,
    two panels: the spread along the discriminative directions (the corollary's
    prediction: → 0) and across them (left free), each against the excess mixup loss.

    Parameters
    ----------
    frames : dict {layer: frame of `against_premise`}
    families : dict {baseline: [baseline, arm, ...]}
    reference : set of arms drawn hollow at their final epoch (ERM)

    Returns
    -------
    (Figure, list of "layer (baseline)" rows left out)
    """
    from repflat.analysis.report.plotting.style import arm_colors
    from repflat.analysis.tidy import arm_order

    rows = [(layer, base, arms) for layer, data in frames.items()
            for base, arms in families.items() if data["arm"].isin(arms).any()]
    left_out = [f"{layer} ({base})" for layer, base, _ in rows[MAX_ROWS:]]
    rows = rows[:MAX_ROWS]
    # strategy colours as everywhere, a sweep's arms shades of theirs: one palette of
    # every arm in every row, so an arm has one colour in all of them
    every = pd.concat(list(frames.values()))
    palette = arm_colors(arm_order(every["arm"]), dict(zip(every["arm"], every["strategy"])))
    fig, axes = plt.subplots(len(rows), 2, figsize=(9.5, 3.1 * len(rows)), squeeze=False)
    for row, (layer, base, arms) in zip(axes, rows):
        data = frames[layer]
        short = short_names(base, arms)
        block = data[data["arm"].isin(arms)].assign(label=lambda d: d["arm"].map(short))
        colors = {short[a]: palette.get(a, arm_colors([a])[a]) for a in arms}
        for ax, y in zip(row, ("along_spread", "across_spread")):
            plot_against_premise(block, y=y, hue="label", colors=colors,
                                 reference={short[a] for a in reference if a in short}, ax=ax)
            tag = "-".join(base.split("-")[1:])  # the baseline's swept values
            ax.set_title(literal(f"{y.replace('_', ' ')} at {layer}" + (f"\n{tag}" if tag else "")),
                         fontsize=8)
        row[1].legend(fontsize=7, loc="best", frameon=False)
    fig.tight_layout()
    return fig, left_out
