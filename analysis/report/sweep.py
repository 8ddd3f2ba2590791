"""The report's sweep section: effect sizes against each swept parameter (effects.csv).

Drawn only for an experiment with a `grid` (effects.csv then has a column per swept key):
one panel per layer, one row per metric, the effect arm − baseline against the swept
parameter that is a number (α, say), one line per combination of the other swept values,
the seed-paired interval as error bars; and a sentence counting the intervals.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from repflat.analysis.effects import RESULT_COLUMNS, effects_note
from repflat.analysis.report.plotting.effects import is_numeric, plot_effects
from repflat.analysis.report.plotting.style import arm_colors, literal, styled

EFFECT_METRICS = ("along_spread", "across_spread", "effective_rank", "sum_other_singular_values")
"""Corollary 1's test (the spread along the discriminative directions ÷ separation) and
the spread it leaves free, a scale-free count of directions, and the paper's σ₂… sum:
rows of the figure, those present."""


def swept_keys(effects: pd.DataFrame) -> list[str]:
    fixed = {"layer", "metric", "arm", "template", *RESULT_COLUMNS}
    return [c for c in effects.columns if c not in fixed]


def x_key(effects: pd.DataFrame) -> str | None:
    """The swept key on the x axis: the first that is a number with two values or more,
    else the first with two values or more."""
    keys = [k for k in swept_keys(effects) if effects[k].dropna().nunique() >= 2]
    numeric = [k for k in keys if is_numeric(effects[k])]
    return (numeric or keys or [None])[0]


def effects_frame(effects: pd.DataFrame, x: str) -> pd.DataFrame:
    """The rows the figure draws (arms that have a value of `x`), with a `line` column
    naming the rest of each point: its template and its other swept values."""
    rows = effects.dropna(subset=[x])
    others = [k for k in swept_keys(effects) if k != x and rows[k].dropna().nunique() >= 2]
    line = rows["template"].astype(str)
    for k in others:
        line = line + " " + k.rsplit(".", 1)[-1] + "=" + rows[k].astype(str)
    return rows.assign(line=line)


def line_colors(data: pd.DataFrame, strategies: dict | None = None) -> dict:
    """{line: colour} of an `effects_frame`: each line in its strategy's colour (`arm_colors`
    of the line with the strategy of its arms), several lines of one strategy as shades of
    it. `strategies` maps arms to strategies (the runs'); without it, a template named as a
    strategy keeps that strategy's colour."""
    strategies = strategies or {}
    of_line = {line: strategies.get(arm, template) for line, arm, template
               in zip(data["line"], data["arm"], data["template"])}
    return arm_colors(dict.fromkeys(data["line"]), of_line)


@styled
def effects_figure(effects: pd.DataFrame, *, layers: list[str] | None = None,
                   metrics: tuple[str, ...] = EFFECT_METRICS, strategies: dict | None = None):
    """Rows: metrics; columns: layers; each panel `plot_effects` against `x_key`, each line
    in its strategy's colour (`line_colors`; `strategies`: {arm: strategy} of the runs).
    None when effects.csv has no swept key with two values."""
    x = x_key(effects) if len(effects) else None
    if x is None:
        return None
    data = effects_frame(effects, x)
    metrics = [m for m in metrics if m in set(data["metric"])]
    layers = [l for l in (layers or dict.fromkeys(data["layer"])) if l in set(data["layer"])]
    if not metrics or not layers:
        return None
    colors = line_colors(data, strategies)
    fig, axes = plt.subplots(len(metrics), len(layers), squeeze=False,
                             figsize=(3.2 * len(layers) + 0.5, 2.7 * len(metrics) + 1.2))
    for i, metric in enumerate(metrics):
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            panel = data[(data["metric"] == metric) & (data["layer"] == layer)]
            plot_effects(panel, x=x, hue="line", colors=colors, ax=ax)
            if (panel[["arm_mean", "baseline_mean"]] == 0).all().all():
                # e.g. a 1-D layer's Σ σ₂…: nothing to compare, said rather than drawn flat
                ax.text(0.5, 0.6, "0 in every arm", transform=ax.transAxes, ha="center",
                        color="0.3")
            ax.set_title(literal(layer) if i == 0 else "")
            ax.set_ylabel(literal(metric.replace("_", " ") + " Δ") if j == 0 else "")
            if i < len(metrics) - 1:
                ax.set_xlabel("")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 * ((len(labels) + 3) // 4) / fig.get_size_inches()[1]))
    return fig


def drawn(effects: pd.DataFrame, *, layers=None, metrics: tuple[str, ...] = EFFECT_METRICS) -> int:
    """How many intervals `effects_figure` draws with the same arguments."""
    x = x_key(effects) if len(effects) else None
    if x is None:
        return 0
    data = effects_frame(effects, x)
    keep = data["metric"].isin(metrics) & (data["layer"].isin(layers) if layers else True)
    return int(data.loc[keep, "low"].notna().sum())


def sweep_blocks(effects: pd.DataFrame, layers: list[str], save,
                 strategies: dict | None = None) -> tuple[list, list]:
    """(report blocks, files written) of the sweep section; `save(fig, name)` writes a
    figure and returns its path; `strategies` ({arm: strategy}) colours the lines. Nothing
    when the experiment swept nothing."""
    from repflat.analysis.report.markup import Heading, Image, Paragraph

    fig = effects_figure(effects, layers=layers, strategies=strategies)
    if fig is None:
        return [], []
    x = x_key(effects)
    n = drawn(effects, layers=layers)
    path = save(fig, "effects.png")
    text = (f"Each arm minus its baseline (ERM trained at the same swept values, over the same "
            f"seeds) at each run's final epoch, against {x}; bars: the seed-paired 95% "
            f"interval (paired t; Welch t where seeds are not shared; none below three "
            f"seeds). Arms without a value of {x} are in effects.csv only. ")
    return [Heading("Sweep: effects against the baseline"), Paragraph(text + effects_note(effects, n)),
            Image("effects.png", f"Effect arm − baseline against {x}, one panel per layer "
                  f"and metric; {n} intervals drawn.")], [path]
