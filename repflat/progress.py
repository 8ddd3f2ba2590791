"""What a long command tells the person waiting for it.

Two channels. A bar (tqdm) shows a pass while it runs:
- on a terminal, on stderr, vanishing when done (the line `say` prints after it is what
  remains); piped or logged output gets none, so log files are not filled with carriage
  returns and an error that ends a command is still the only line on stderr;
- in Jupyter, with or without ipywidgets, one plain text line updated in place (an
  IPython display with an id) that stays, finished, in the notebook: a saved notebook,
  executed headless or read where widgets do not render, shows the finished bar rather
  than a widget stuck at the percentage it was first drawn at.
A line (`say`) goes to stdout whenever progress is asked for: one per run and per phase
("erm seed 0: 300 epochs, test accuracy 0.996, 4.1 s"), so a log, a notebook or CI shows
what happened and how long it took.

`show=None` is the library's default: progress where someone is watching (a notebook or
a terminal) for passes that last more than DELAY seconds, nothing otherwise (scripts
piped into files, tests). Nothing here imports `tqdm.auto` or `tqdm.notebook`, so
importing repflat never warns about missing widgets.
"""
from __future__ import annotations

import sys

from tqdm.std import tqdm

DELAY = 1.0
"""Seconds a pass must last before an automatic (show=None) bar or line appears."""
NOTEBOOK_EVERY = 0.5
"""Seconds between the updates of a bar's line in a notebook."""


def counted(n: int, noun: str) -> str:
    """'1 seed', '3 seeds': a count with its noun in the right number."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (not a terminal IPython)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and hasattr(shell, "kernel")


def watched() -> bool:
    """Someone is watching: a notebook, or a terminal on stderr."""
    return in_notebook() or sys.stderr.isatty()


class _NotebookLine:
    """A file for tqdm in Jupyter: each redraw replaces the text of one display output
    (its carriage returns and the blanks it clears a line with are dropped)."""

    def __init__(self):
        self.handle, self.last = None, ""

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if not text or text == self.last:
            return
        from IPython.display import display

        self.last = text
        if self.handle is None:
            self.handle = display({"text/plain": text}, raw=True, display_id=True)
        else:
            self.handle.update({"text/plain": text}, raw=True)

    def flush(self) -> None:
        pass


def progress_bar(iterable=None, *, show: bool | None, **kwargs) -> tqdm:
    """A tqdm bar for the place this runs in (module docstring); `show` False draws
    nothing, True draws it from the start, None draws it where someone is watching once
    the pass has lasted DELAY seconds."""
    if show is False or (show is None and not watched()):
        return tqdm(iterable, disable=True, **kwargs)
    kwargs.setdefault("dynamic_ncols", True)
    if show is None:
        kwargs.setdefault("delay", DELAY)
    if in_notebook():  # a finished bar stays, as the notebook's record of the pass
        kwargs |= {"file": _NotebookLine(), "leave": True, "mininterval": NOTEBOOK_EVERY,
                   "ascii": False, "dynamic_ncols": False, "ncols": 90}
        return tqdm(iterable, **kwargs)
    kwargs.setdefault("leave", False)  # the line `say` prints after it is what remains
    return tqdm(iterable, disable=None, **kwargs)


def say(line: str, *, show: bool | None, seconds: float | None = None) -> None:
    """One plain line on stdout, at once (flushed): when `show` is true, or, when it is
    None, where someone is watching and the phase took DELAY seconds or more (or says
    nothing of its length). Written around any bar on the terminal so neither garbles
    the other."""
    if show or (show is None and watched() and (seconds is None or seconds >= DELAY)):
        tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()
