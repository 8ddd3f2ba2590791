"""The report's multi-panel figures drawn from the tidy tables alone (no features needed).

- `spectra_figure`: class spectra, mean ± std over seeds, one row per layer; columns
  for each class (or the chosen one when there are many), the class average, and all
  classes pooled (the control) beside them.
- `epochs_figure`: class-averaged flattening metrics over the captured epochs; panels
  constant at every epoch for every arm are left out (`constant_panels` names them, and
  the report says so under the figure).
- `heatmap_figure`: arm × layer heat map of one metric, its pooled control beside it;
  none for a single arm (there is nothing to compare).

Each returns a matplotlib Figure, or None when the tables lack what it needs. Every
figure with several arms takes their colours once (`hue_colors` of all arms) and builds
its legend from all of them: a panel shows only the arms that have its layer.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from repflat.analysis.report.plotting.plots import (arm_strategies, class_mean_spectra, hue_colors,
                                                    plot_metric_heatmap,
                                                    plot_metric_over_epochs, plot_spectrum,
                                                    round_off_to_zero)
from repflat.analysis.report.tables import number
from repflat.analysis.tidy import class_names_in, class_order, final_epoch
from repflat.analysis.report.plotting.style import literal, styled
from repflat.rundir.names import CLASS, POOLED

EPOCH_METRICS = ("largest_singular_value", "sum_other_singular_values", "effective_rank",
                 "residual_variance_share")


def class_labels(spectra: pd.DataFrame) -> list[int]:
    """The class labels of a spectra frame, ascending."""
    return class_order(spectra.loc[spectra["group"] == CLASS, "class"])


def _legend(fig, colors: dict) -> None:
    """One legend for the figure, of every arm in `colors`, read row by row in their order
    (matplotlib fills a legend's columns first), as many per row as the width holds."""
    handles = [Line2D([], [], color=c, marker="o", markersize=3, linewidth=1.4, label=literal(a))
               for a, c in colors.items()]
    ncol = max(1, min(len(handles), int(fig.get_size_inches()[0] // 1.1)))
    rows = -(-len(handles) // ncol)
    column_major = [handles[r * ncol + c] for c in range(ncol) for r in range(rows)
                    if r * ncol + c < len(handles)]
    fig.legend(handles=column_major, loc="upper center", ncol=ncol, frameon=False,
               bbox_to_anchor=(0.5, 1.0))


def _grid_layout(fig) -> None:
    """Fixed margins in inches for a grid of small panels with a legend on top. tight_layout
    measures every tick label of every panel, slow for many log axes (benchmarks/
    design_choices.py); savefig's tight bounding box still trims what is left over."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.8 / w, right=1 - 0.2 / w, bottom=0.55 / h, top=1 - 0.75 / h,
                        wspace=0.38, hspace=0.5)


@styled
def spectra_figure(spectra: pd.DataFrame, *, layers: list[str] | None = None,
                   cls: int | str | None = None, max_classes: int = 4, log: bool = True):
    """Rows: layers (default: every analysed layer but `input`); columns: each class when
    there are at most `max_classes` (else class `cls` only), then the class average, then
    the pooled control. Each panel: mean over seeds with its min–max band, per arm."""
    data = final_epoch(spectra)
    layers = layers or [l for l in dict.fromkeys(data["layer"]) if l != "input"] or list(
        dict.fromkeys(data["layer"]))
    labels = class_labels(data)
    if not layers or not labels:
        return None
    shown = labels if len(labels) <= max_classes else [int(cls) if cls is not None else labels[0]]
    names = class_names_in(data)
    means = class_mean_spectra(data)
    columns = [(f"class {names.get(c, c)}", data[data["class"] == c]) for c in shown]
    columns += [("mean over classes", means), ("all classes pooled (control)",
                                                data[data["group"] == POOLED])]
    colors = hue_colors(data["arm"], strategies=arm_strategies(data))
    fig, axes = plt.subplots(len(layers), len(columns), squeeze=False,
                             figsize=(3.3 * len(columns), 2.6 * len(layers) + 0.5))
    for i, layer in enumerate(layers):
        for j, (title, frame) in enumerate(columns):
            ax = axes[i, j]
            plot_spectrum(frame[frame["layer"] == layer], ax=ax, log=log, palette=colors)
            ax.set_title(literal(f"{layer}: {title}"))
            if i < len(layers) - 1:
                ax.set_xlabel("")
            if j > 0:
                ax.set_ylabel("")
            if ax.get_legend():
                ax.get_legend().remove()
    _legend(fig, colors)
    _grid_layout(fig)
    return fig


def _epoch_layers(summary: pd.DataFrame, layers: list[str] | None) -> list[str]:
    return layers or [l for l in dict.fromkeys(summary["layer"]) if l != "input"]


def constant_panels(summary: pd.DataFrame, *, metrics: tuple[str, ...] = EPOCH_METRICS,
                    layers: list[str] | None = None) -> pd.DataFrame:
    """The (metric, layer) panels of `epochs_figure` that carry no information: every
    arm's mean the same value at every epoch, with no spread over seeds, once round-off
    (below tables.ROUND_OFF) reads 0. Columns metric, layer, value (the constant).

    A residual variance share where every class fits in dim(H) − K + 1 dimensions is 0 at
    every epoch; drawn, its round-off (1e-15 … 1e-136) looked like a trend. A metric
    undefined at every epoch (NaN: the share where Corollary 1 is vacuous) is a constant
    panel of value NaN, said as NA."""
    rows = []
    for metric in [m for m in metrics if m in set(summary["metric"])]:
        for layer in _epoch_layers(summary, layers):
            panel = summary[(summary["metric"] == metric) & (summary["layer"] == layer)]
            if panel.empty:
                continue
            mean, std = round_off_to_zero(panel["mean"]), round_off_to_zero(panel["std"].fillna(0))
            if np.isnan(mean).all():  # undefined at every epoch: NA, not a line at 0
                rows.append({"metric": metric, "layer": layer, "value": np.nan})
            elif (std == 0).all() and np.allclose(mean, mean[0], rtol=1e-9, atol=0):
                rows.append({"metric": metric, "layer": layer, "value": float(mean[0])})
    return pd.DataFrame(rows, columns=["metric", "layer", "value"])


def constant_note(constant: pd.DataFrame) -> str | None:
    """The sentence the report puts under the over-training figure for the panels it leaves
    out, e.g. 'residual variance share at fc1, fc2 (0)'."""
    if constant.empty:
        return None
    parts = []
    for (metric, value), rows in constant.groupby(["metric", "value"], sort=False, dropna=False):
        said = "NA: undefined" if np.isnan(value) else number(value)
        parts.append(f"{metric.replace('_', ' ')} at {', '.join(rows['layer'])} ({said})")
    return ("Left out of the figure, constant at every analysed epoch for every arm (nothing "
            "changes over training): " + "; ".join(parts) + ".")


@styled
def epochs_figure(summary: pd.DataFrame, *, metrics: tuple[str, ...] = EPOCH_METRICS,
                  layers: list[str] | None = None):
    """Rows: metrics (class-averaged, those present); columns: layers; x: epoch. None
    unless some arm was analysed at two epochs or more. A metric constant at every layer
    (and a layer at which every metric is constant) has no row (column); a constant panel
    among others says its value instead of drawing it; `constant_panels` lists them all.
    None when nothing is left."""
    per_arm = summary.groupby("arm")["epoch"].nunique()
    if per_arm.empty or per_arm.max() < 2:
        return None
    metrics = [m for m in metrics if m in set(summary["metric"])]
    layers = _epoch_layers(summary, layers)
    constant = constant_panels(summary, metrics=tuple(metrics), layers=layers)
    flat = {(m, l): v for m, l, v in constant.itertuples(index=False)}
    metrics = [m for m in metrics if any((m, l) not in flat for l in layers)]
    layers = [l for l in layers if any((m, l) not in flat for m in metrics)]
    if not metrics or not layers:
        return None
    colors = hue_colors(summary["arm"], strategies=arm_strategies(summary))
    fig, axes = plt.subplots(len(metrics), len(layers), squeeze=False,
                             figsize=(3.3 * len(layers), 2.5 * len(metrics) + 0.5))
    for i, metric in enumerate(metrics):
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            if (metric, layer) in flat:
                value = flat[metric, layer]
                said = "NA at every epoch (undefined)" if np.isnan(value) else f"{number(value)} at every epoch"
                ax.text(0.5, 0.5, said,
                        transform=ax.transAxes, ha="center", va="center", color="0.35")
                ax.set_xticks([]), ax.set_yticks([])
            else:
                rows = summary[(summary["metric"] == metric) & (summary["layer"] == layer)]
                plot_metric_over_epochs(rows, ax=ax, palette=colors)
                if ax.get_legend():
                    ax.get_legend().remove()
            ax.set_title(literal(layer) if i == 0 else "")
            ax.set_ylabel(literal(metric.replace("_", " ")) if j == 0 else "")
            if i < len(metrics) - 1:
                ax.set_xlabel("")
    _legend(fig, colors)
    _grid_layout(fig)
    return fig


@styled
def heatmap_figure(summary: pd.DataFrame, metric: str, *, layers: list[str] | None = None):
    """The arm × layer heat map of `metric` and, when the tables have it, of the same
    metric for all classes pooled (the control) beside it. None for one arm: its colours
    are ratios between arms, and one arm against itself is ×1 everywhere."""
    present = set(summary["metric"])
    if metric not in present or summary["arm"].nunique() < 2:
        return None
    panels = [metric] + ([f"pooled_{metric}"] if f"pooled_{metric}" in present else [])
    layers = layers or [l for l in dict.fromkeys(summary["layer"]) if l != "input"]
    n_arms, n_layers = summary["arm"].nunique(), len(layers)
    # each panel labels its rows with the arm names: a sweep's are long (60+ characters)
    label = 0.065 * max(map(len, summary["arm"].astype(str)), default=0)
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(len(panels) * (2.2 + 1.1 * n_layers + label), 1.2 + 0.5 * n_arms))
    for ax, m in zip(axes[0], panels):
        plot_metric_heatmap(summary, metric=m, layers=layers, ax=ax)
    fig.tight_layout()
    return fig

