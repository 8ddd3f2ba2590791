"""One look for every figure: a theme, a colour-blind-safe palette, a fixed colour per arm."""
from __future__ import annotations

from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")  # figures are files; never ask for a display

import seaborn as sns  # noqa: E402

PALETTE = sns.color_palette("colorblind")
# The three strategies keep their colours in every figure, whatever else is plotted.
FIXED = {"erm": 0, "none": 0, "baseline": 0, "input_mixup": 1, "manifold_mixup": 2}
CLASS_PALETTE = sns.color_palette("colorblind")


def theme() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.15,
                  rc={"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight"})


def arm_colors(arms: Iterable[str]) -> dict[str, tuple]:
    """Colour of each arm: fixed for erm/none, input_mixup, manifold_mixup; then in turn."""
    arms = list(dict.fromkeys(arms))
    free = iter(c for i, c in enumerate(PALETTE) if i not in set(FIXED.values()))
    return {a: PALETTE[FIXED[a]] if a in FIXED else next(free, (0.3, 0.3, 0.3)) for a in arms}


def arm_order(arms: Iterable[str]) -> list[str]:
    """The strategies first, in the paper's order, then the other arms as they came."""
    arms = list(dict.fromkeys(arms))
    return sorted(arms, key=lambda a: (FIXED.get(a, 9), arms.index(a)))
