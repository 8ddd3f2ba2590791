"""What a long command tells the person waiting for it.

Two channels. A bar (tqdm) is drawn on stderr when asked for *and* stderr is a terminal,
and vanishes when done; piped or logged output gets none, so log files are not filled
with carriage returns and an error that ends a command is still the only line on stderr.
A line (`say`) goes to stdout whenever progress is asked for, terminal or not: one per
run and per phase ("erm seed 0: 300 epochs, test accuracy 0.996, 4.1 s"), so a log, a
notebook's `!` cell or CI shows what happened and how long it took.
"""
from __future__ import annotations

import sys

from tqdm.auto import tqdm


def counted(n: int, noun: str) -> str:
    """'1 seed', '3 seeds': a count with its noun in the right number."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def progress_bar(iterable=None, *, show: bool, **kwargs) -> tqdm:
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)  # the line `say` prints after it is what remains
    return tqdm(iterable, disable=None if show else True, **kwargs)


def say(line: str, *, show: bool) -> None:
    """One plain line on stdout, at once (flushed), unless `show` is false; written around
    any bar on the terminal so neither garbles the other."""
    if show:
        tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()
