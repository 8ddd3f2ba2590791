"""The one error idiom: name the argument, say what was expected, quote what was got.

Every mistake a user can make (a config key, a layer name, a run directory) raises
`UserError`. The CLI prints its message as one line on stderr and exits with status 2;
everything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in what the user asked for, phrased so the user can fix it."""


class RepflatWarning(UserWarning):
    """Something handled as documented that the user should still hear about; the CLI
    prints it as one line on stderr (`repflat: warning: ...`)."""


def expected(argument: str, what: str, got: object) -> UserError:
    """`argument: expected WHAT, got GOT` — the message every check uses."""
    return UserError(f"{argument}: expected {what}, got {got!r}")


def choice(argument: str, got: object, valid: Iterable[object]) -> object:
    """`got` if it is one of `valid`; else the error `argument: expected one of ..., got ...`."""
    valid = tuple(valid)
    if got not in valid:
        raise expected(argument, "one of " + ", ".join(map(str, valid)), got)
    return got


def unknown(argument: str, got: str, valid: Iterable[str]) -> UserError:
    """An unknown name, with the close matches first and then every valid name."""
    valid = list(valid)
    close = difflib.get_close_matches(got, valid, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    shown = ", ".join(valid[:40]) + (f", … ({len(valid)} in all)" if len(valid) > 40 else "")
    return UserError(f"{argument}: unknown name {got!r}{hint}; valid: {shown}")
