"""One look for every figure: a style, a colour-blind-safe palette, a fixed colour per arm.

Every figure builder draws inside `figure_style()`, a local rc context (seaborn's
whitegrid and paper context, the palette, the report's dpi): nothing is set globally, so
a notebook's backend and rcParams are as the user left them after drawing, and importing
this module selects no backend (the CLI picks Agg for itself). Arm colours come from
`arm_colors`, so ERM is the same blue, input mixup the same orange and manifold mixup the
same green in Figure 1, the spectra, the heat map's rows, the embeddings and every
experiment's report.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib import cycler

PALETTE = sns.color_palette("colorblind")  # Wong's palette as seaborn orders it (10 colours)
# The paper's strategies and the regularizers of its Figure 2 keep their colours in every
# figure, whatever else is plotted; other arms take the remaining colours in turn.
FIXED = {"erm": 0, "none": 0, "baseline": 0, "input_mixup": 1, "manifold_mixup": 2,
         "dropout": 3, "weight_decay": 4, "input_noise": 5, "batch_norm": 6}
CLASS_PALETTE = sns.color_palette("colorblind")


def style_rc() -> dict:
    """The rcParams of repflat's figures: what seaborn's `set_theme` (context "paper",
    style "whitegrid", font_scale 1.15) would set globally, plus the palette and dpi."""
    return {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.15),
            "font.family": ["sans-serif"], "axes.prop_cycle": cycler(color=PALETTE),
            "figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
            "axes.titlesize": "medium", "legend.frameon": False}


def figure_style():
    """A context in which figures take repflat's look; rcParams are restored on exit."""
    return plt.rc_context(style_rc())


def styled(builder):
    """Decorator: run a figure builder inside `figure_style()`."""
    @functools.wraps(builder)
    def draw(*args, **kwargs):
        with figure_style():
            return builder(*args, **kwargs)
    return draw


def arm_colors(arms: Iterable[str]) -> dict[str, tuple]:
    """Colour of each arm: fixed for the strategies and Figure 2's regularizers; then in turn."""
    arms = list(dict.fromkeys(arms))
    free = iter(c for i, c in enumerate(PALETTE) if i not in set(FIXED.values()))
    return {a: PALETTE[FIXED[a]] if a in FIXED else next(free, (0.3, 0.3, 0.3)) for a in arms}


def literal(text: object) -> str:
    """`text` as matplotlib shows it, character for character: every `$` escaped, so a
    name from a file (an arm, layer, class or metric; `a$x$b`, `l$\\frac$`) is never read
    as mathtext, which would typeset it or fail at savefig. Apply once, where a name
    enters a title, label, legend, tick label or figure text; our own text may still use
    mathtext (log-scale tick labels do)."""
    return str(text).replace("$", r"\$")


def class_colors(n_classes: int) -> list[tuple]:
    """One colour per class: the colour-blind-safe palette up to 10 classes, then evenly
    spaced hues (no palette keeps 100 classes apart for every reader)."""
    if n_classes <= len(CLASS_PALETTE):
        return list(CLASS_PALETTE[:n_classes])
    return sns.color_palette("husl", n_classes)
