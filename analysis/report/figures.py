"""The report's multi-panel figures drawn from the tidy tables alone (no features needed).

- `spectra_figure`: class spectra, mean ± std over seeds, one row per layer; columns
  for each class (or the chosen one when there are many), the class average, and all
  classes pooled (the control) beside them.
- `epochs_figure`: class-averaged flattening metrics over the captured epochs.
- `heatmap_figure`: arm × layer heat map of one metric, its pooled control beside it.

Each returns a matplotlib Figure, or None when the tables lack what it needs.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from repflat.analysis.report.plotting.plots import (class_mean_spectra, plot_metric_heatmap, plot_metric_over_epochs, plot_spectrum)
from repflat.analysis.tidy import class_names_in, class_order, final_epoch
from repflat.analysis.report.plotting.style import literal, styled
from repflat.rundir.names import CLASS, POOLED

EPOCH_METRICS = ("largest_singular_value", "sum_other_singular_values", "effective_rank",
                 "residual_variance_share")


def class_labels(spectra: pd.DataFrame) -> list[int]:
    """The class labels of a spectra frame, ascending."""
    return class_order(spectra.loc[spectra["group"] == CLASS, "class"])


def _legend(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 7), frameon=False,
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
    the pooled control. Each panel: mean over seeds with a ±1 std band, per arm."""
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
    fig, axes = plt.subplots(len(layers), len(columns), squeeze=False,
                             figsize=(3.3 * len(columns), 2.6 * len(layers) + 0.5))
    for i, layer in enumerate(layers):
        for j, (title, frame) in enumerate(columns):
            ax = axes[i, j]
            plot_spectrum(frame[frame["layer"] == layer], ax=ax, log=log)
            ax.set_title(literal(f"{layer}: {title}"))
            if i < len(layers) - 1:
                ax.set_xlabel("")
            if j > 0:
                ax.set_ylabel("")
            if ax.get_legend():
                ax.get_legend().remove()
    _legend(fig, axes[0, 0])
    _grid_layout(fig)
    return fig


@styled
def epochs_figure(summary: pd.DataFrame, *, metrics: tuple[str, ...] = EPOCH_METRICS,
                  layers: list[str] | None = None):
    """Rows: metrics (class-averaged, those present); columns: layers; x: epoch. None
    unless some arm was analysed at two epochs or more."""
    per_arm = summary.groupby("arm")["epoch"].nunique()
    if per_arm.empty or per_arm.max() < 2:
        return None
    metrics = [m for m in metrics if m in set(summary["metric"])]
    layers = layers or [l for l in dict.fromkeys(summary["layer"]) if l != "input"]
    if not metrics or not layers:
        return None
    fig, axes = plt.subplots(len(metrics), len(layers), squeeze=False,
                             figsize=(3.3 * len(layers), 2.5 * len(metrics) + 0.5))
    for i, metric in enumerate(metrics):
        for j, layer in enumerate(layers):
            ax = axes[i, j]
            rows = summary[(summary["metric"] == metric) & (summary["layer"] == layer)]
            plot_metric_over_epochs(rows, ax=ax)
            if ax.get_legend():
                ax.get_legend().remove()
            ax.set_title(literal(layer) if i == 0 else "")
            ax.set_ylabel(literal(metric.replace("_", " ")) if j == 0 else "")
            if i < len(metrics) - 1:
                ax.set_xlabel("")
    _legend(fig, axes[0, 0])
    _grid_layout(fig)
    return fig


@styled
def heatmap_figure(summary: pd.DataFrame, metric: str, *, layers: list[str] | None = None):
    """The arm × layer heat map of `metric` and, when the tables have it, of the same
    metric for all classes pooled (the control) beside it."""
    present = set(summary["metric"])
    if metric not in present:
        return None
    panels = [metric] + ([f"pooled_{metric}"] if f"pooled_{metric}" in present else [])
    layers = layers or [l for l in dict.fromkeys(summary["layer"]) if l != "input"]
    n_arms, n_layers = summary["arm"].nunique(), len(layers)
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(len(panels) * (2.2 + 1.1 * n_layers), 1.2 + 0.5 * n_arms))
    for ax, m in zip(axes[0], panels):
        plot_metric_heatmap(summary, metric=m, layers=layers, ax=ax)
    fig.tight_layout()
    return fig

