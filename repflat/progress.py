"""Progress bars that appear only where a person watches them.

A bar is drawn when asked for *and* stderr is a terminal (tqdm's `disable=None`); piped
or logged output gets none, so an error that ends a command early is still the only
line on stderr, and log files are not filled with carriage returns.
"""
from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable=None, *, show: bool, **kwargs) -> tqdm:
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=None if show else True, **kwargs)
