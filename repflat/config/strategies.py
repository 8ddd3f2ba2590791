"""The strategies and regularizer arms repflat knows by name, each declared once.

A `Strategy` is a value of `mixing.strategy` (`mixing=True`: none, input_mixup,
manifold_mixup) or the conventional name of an arm that regularizes otherwise (a
section's field: weight_decay, input_noise, dropout, batch_norm; the paper's Figure 2).
Everything that orders, labels or compares arms iterates STRATEGIES: the config's
`mixing.strategy` values, the run label's words, the tables' order (the declared one),
the figures' labels and colours (keyed by `name`), and which arm is the baseline the
others are compared against. An arm of any other name comes after these, in the order
it came.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    name: str
    """The strategy (a `mixing.strategy` value) or the arm name it is known by."""
    label: str
    """What tables and legends call it."""
    mixing: bool
    """A value of `mixing.strategy` (else a regularizer arm's name)."""
    baseline: bool = False
    """What every other arm is compared against (ERM)."""
    aliases: tuple[str, ...] = ()
    """Other arm names that mean the same (`erm` for `none`)."""


STRATEGIES = (
    Strategy("none", "ERM", mixing=True, baseline=True, aliases=("erm", "baseline")),
    Strategy("weight_decay", "weight decay", mixing=False),
    Strategy("input_noise", "input noise", mixing=False),
    Strategy("dropout", "dropout", mixing=False),
    Strategy("batch_norm", "batch norm", mixing=False),
    Strategy("input_mixup", "input mixup", mixing=True),
    Strategy("manifold_mixup", "manifold mixup", mixing=True),
)
"""In the order tables and figures show them."""
MIXING_STRATEGIES = tuple(s.name for s in STRATEGIES if s.mixing)
"""The values `mixing.strategy` takes."""


def strategy(name: str) -> Strategy | None:
    """The declared strategy `name` is (by its name or an alias), or None."""
    return next((s for s in STRATEGIES if name == s.name or name in s.aliases), None)
