"""The embeddings figure: one scatter panel per (method, arm), points coloured by class.

The coordinates come from `repflat.analysis.embeddings` (computation); this module only
draws them, from the tidy frame `embedding_frame` returns.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from repflat.analysis.embeddings import NAMES, sampling_note
from repflat.analysis.report.plotting.style import class_colors, literal, styled, with_seed
from repflat.analysis.tidy import arm_order, class_names_in, class_order


@styled
def plot_embeddings(data: pd.DataFrame, *, x: str = "x", y: str = "y", hue: str = "class",
                    row: str = "method", col: str = "arm", seed: int = 0, size: float = 5):
    """A figure of scatter panels, rows = methods, columns = arms (fixed order), points
    coloured by class (`hue`: the label column); the legend names each class by its
    `class_name` when the frame has names. The subsampling is written under the panels."""
    methods = list(dict.fromkeys(data[row]))
    arms = arm_order(data[col]) if col == "arm" else list(dict.fromkeys(data[col]))
    classes = class_order(data[hue])
    names = class_names_in(data.assign(**{"class": data[hue]})) if "class_name" in data else {}
    colors = dict(zip(classes, class_colors(len(classes))))
    fig, axes = plt.subplots(len(methods), len(arms), figsize=(3.4 * len(arms), 3.2 * len(methods)),
                             squeeze=False)
    for i, method in enumerate(methods):
        for j, arm in enumerate(arms):
            ax = axes[i, j]
            d = data[(data[row] == method) & (data[col] == arm)]
            ax.scatter(d[x], d[y], c=[colors[int(c)] for c in d[hue]], s=size, linewidths=0,
                       alpha=0.8)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                run_seed = d["seed"].iloc[0] if "seed" in d and len(d) else None
                ax.set_title(literal(with_seed(arm, run_seed)))
            if j == 0:
                ax.set_ylabel(literal(NAMES.get(method, method)))
    if len(classes) <= 10:
        handles = [Line2D([], [], marker="o", linestyle="", color=colors[c], label=literal(
            names[c] if names.get(c, str(c)) != str(c) else f"class {c}")) for c in classes]
        fig.legend(handles=handles, loc="upper center", ncol=min(len(classes), 10),
                   bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95 if len(classes) <= 10 else 1))
    fig.text(0.5, 0.005, literal(sampling_note(data, seed)), ha="center", va="bottom", fontsize="small",
             color="0.3")
    return fig

