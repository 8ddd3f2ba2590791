"""One look for every figure: a theme, a colour-blind-safe palette, a fixed colour per arm.

Every figure calls `theme()` before drawing and takes arm colours from `arm_colors`, so
ERM is the same blue, input mixup the same orange and manifold mixup the same green in
Figure 1, the spectra, the heat map's rows, the embeddings and every experiment's report.
"""
from __future__ import annotations

from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")  # figures are files; never ask for a display

import seaborn as sns  # noqa: E402

PALETTE = sns.color_palette("colorblind")  # Wong's palette as seaborn orders it (10 colours)
# The paper's strategies and the regularizers of its Figure 2 keep their colours in every
# figure, whatever else is plotted; other arms take the remaining colours in turn.
FIXED = {"erm": 0, "none": 0, "baseline": 0, "input_mixup": 1, "manifold_mixup": 2,
         "dropout": 3, "weight_decay": 4, "input_noise": 5, "batch_norm": 6}
CLASS_PALETTE = sns.color_palette("colorblind")


def theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.15,
                  rc={"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
                      "axes.titlesize": "medium", "legend.frameon": False})


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
