"""One look for every figure: a style, a colour-blind-safe palette, a fixed colour per arm.

Every figure builder draws inside `figure_style()`, a local rc context (seaborn's
whitegrid and paper context, the palette, the report's dpi): nothing is set globally, so
a notebook's backend and rcParams are as the user left them after drawing, and importing
this module selects no backend (the CLI picks Agg for itself). Arm colours come from
`arm_colors`, so ERM is the same blue, input mixup the same orange and manifold mixup the
same green in Figure 1, the spectra, the effects, the Corollary 1 figure and every
experiment's report; a sweep's arms of one strategy are shades of its colour. Classes take colours of their own (`class_colors`), none an arm's.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib import cycler
from seaborn.external import husl

from repflat.rundir.names import STRATEGIES

PALETTE = sns.color_palette("colorblind")  # Wong's palette as seaborn orders it (10 colours)
# The paper's strategies and the regularizers of its Figure 2 keep their colours in every
# figure, whatever else is plotted; other arms take the remaining colours in turn.
COLOURS = {"none": 0, "input_mixup": 1, "manifold_mixup": 2, "dropout": 3, "weight_decay": 4,
           "input_noise": 5, "batch_norm": 6}
"""Palette index of each declared strategy (repflat.config.strategies), by its name."""
NAMED = {word: s.name for s in STRATEGIES if s.name in COLOURS for word in (s.name, *s.aliases)}
"""The strategy an arm name is: each strategy's name and its aliases (erm)."""
FIXED = {word: COLOURS[s] for word, s in NAMED.items()}
"""Every arm name a fixed colour goes with, its palette index."""
SHADE_RANGE = (28.0, 74.0)
"""HUSL lightness of a sweep's shades: the classes' Set2 colours are lighter (66–88)."""
# Classes take light, soft colours and arms saturated ones, so a class is never read as an
# arm (class 0 was ERM's blue) and no colour is in both palettes (tests/test_figure_cases).
CLASS_PALETTE = sns.color_palette("Set2")
GREY = 7  # the palette's grey reads as "absent" or "disabled": no arm gets it
GOLDEN_ANGLE = 137.50776  # successive hues as far from all earlier ones as can be, for any count


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


def extra_arm_color(i: int) -> tuple:
    """The colour of the i-th arm past the palette: hues a golden angle apart at the
    palette's saturation and a darker lightness than any class colour, so an arm added
    later never changes the colours of the arms before it."""
    return tuple(husl.husl_to_rgb((20 + GOLDEN_ANGLE * i) % 360, 90, 45))


def strategy_of(arm: str, strategies: Mapping[str, str] | None = None) -> str | None:
    """The strategy whose colour `arm` takes: the one `strategies` gives it (a run's
    config), else the one its name is (`erm`, `manifold_mixup`: features from other tools
    carry no config), else None (a user-named arm of no known strategy)."""
    known = (strategies or {}).get(arm)
    if known in COLOURS:
        return known
    return NAMED.get(arm)


def shades(color, n: int) -> list[tuple]:
    """`n` shades of `color`, light to dark: its hue and saturation (HUSL), lightness
    stepped by up to 12 (closer for many) around its own, kept within [28, 74] so that
    none fades into a class colour (Set2, lighter) nor darkens to black. One shade: the
    colour itself."""
    if n == 1:
        return [tuple(color)]
    h, s, l = husl.rgb_to_husl(*color)
    step = min(12.0, 40.0 / (n - 1))
    levels = l + step * ((n - 1) / 2 - np.arange(n))
    levels += max(0.0, SHADE_RANGE[0] - levels.min()) - max(0.0, levels.max() - SHADE_RANGE[1])
    return [tuple(float(np.clip(c, 0, 1)) for c in husl.husl_to_rgb(h, s, v)) for v in levels]


def arm_colors(arms: Iterable[str], strategies: Mapping[str, str] | None = None) -> dict[str, tuple]:
    """Colour of each arm: its strategy's (`strategy_of`: ERM blue, input mixup orange,
    manifold mixup green, Figure 2's regularizers theirs); several arms of one strategy
    (a sweep: `manifold_mixup-alpha0.5`, `-alpha2`, …) shades of that colour, light to
    dark in the order given (`shades`). Arms of no known strategy, in the order given,
    take the palette's remaining colours (sky blue, yellow; not its grey), then
    `extra_arm_color`: every arm its own colour, however many there are.

    Parameters
    ----------
    arms : iterable of str
        The arm names, in the order the figure shows them (`tidy.arm_order`).
    strategies : mapping {arm: strategy}, optional
        Each arm's strategy from its runs (the `strategy` column of the tables); an arm
        missing here takes the strategy its name is, if it is one.
    """
    arms = list(dict.fromkeys(arms))
    kind = {a: strategy_of(a, strategies) for a in arms}
    groups: dict[str, list[str]] = {}
    for a in arms:
        if kind[a] is not None:
            groups.setdefault(kind[a], []).append(a)
    colors = {a: shade for s, members in groups.items()
              for a, shade in zip(members, shades(PALETTE[COLOURS[s]], len(members)))}
    free = [c for i, c in enumerate(PALETTE) if i not in set(COLOURS.values()) | {GREY}][::-1]
    others = [a for a in arms if kind[a] is None]
    colors |= {a: free[i] if i < len(free) else extra_arm_color(i - len(free))
               for i, a in enumerate(others)}
    return {a: colors[a] for a in arms}


def literal(text: object) -> str:
    """`text` as matplotlib shows it, character for character: every `$` escaped, so a
    name from a file (an arm, layer, class or metric; `a$x$b`, `l$\\frac$`) is never read
    as mathtext, which would typeset it or fail at savefig. Apply once, where a name
    enters a title, label, legend, tick label or figure text; our own text may still use
    mathtext (log-scale tick labels do)."""
    return str(text).replace("$", r"\$")


def class_colors(n_classes: int) -> list[tuple]:
    """One colour per class: ColorBrewer's Set2 up to 8 classes, then evenly spaced hues
    lighter than any arm's (no palette keeps 100 classes apart for every reader); never a
    colour of `arm_colors`."""
    if n_classes <= len(CLASS_PALETTE):
        return list(CLASS_PALETTE[:n_classes])
    return sns.husl_palette(n_classes, l=0.7)


def lighten(colors, amount: float = 0.5):
    """`colors` (RGB in [0, 1], any leading shape) moved `amount` of the way to white:
    class regions behind points of the full class colour, so the points stay visible."""
    colors = np.asarray(colors, dtype=float)
    return colors + amount * (1.0 - colors)


def with_seed(name: object, seed: object) -> str:
    """A panel's title: `name (seed 3)`, or the name alone when the seed is unknown (NA,
    None or "unknown": features from another tool) rather than "seed unknown"."""
    known = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    return f"{name} (seed {int(seed)})" if known else str(name)
