"""The one error idiom: name the argument, say what was expected, quote what was got.

Every mistake a user can make (a config key, a layer name, a run directory) raises
`UserError`. The CLI prints its message as one line on stderr and exits with status 2;
everything else is a bug and keeps its traceback. In Jupyter and IPython a UserError is
shown as its message alone (`_render_traceback_`, IPython's protocol for an exception's
own display); in a script, the public functions are wrapped by `public`, so the
traceback ends at the call that made the mistake, not in the frames of repflat's
internals it passed through.
"""
from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable


class UserError(Exception):
    """A mistake in what the user asked for, phrased so the user can fix it.

    The message is one line, `[WHERE: ][ARGUMENT: ]DETAIL`; its parts are kept as fields,
    so whoever says it in another form reads them rather than the text (the CLI turns a
    parameter into its flag, config loading puts FILE:LINE:COL of a key before it):

    - `argument`: the parameter or dotted config key the mistake is in (`batch_size`,
      `arms.erm.mixing.alpha`, several as `resume, restart`), with any qualifier the
      message gives it (`paths: DIR`, `layers (saved for ...)`); None when the message
      names none;
    - `expected`, `got`: what was expected (for an unknown name, the valid names) and
      what was got, when the message says them;
    - `what`: for an unknown name, what kind of name it is (`key`, `layer`);
    - `where`: the file the argument is in, said first.
    """

    def __init__(self, detail: str, *, argument: str | None = None, expected: object = None,
                 got: object = None, what: str | None = None, where: str | None = None):
        self.detail, self.argument, self.where = detail, argument, where
        self.expected, self.got, self.what = expected, got, what
        super().__init__(str(self))

    def __str__(self) -> str:
        return ": ".join(p for p in (self.where, self.argument, self.detail) if p is not None)

    def __reduce__(self):  # keep the fields across processes (a sweep's workers)
        return _restored, (type(self), self.args, dict(self.__dict__))

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameter names `argument` opens with (before a qualifier `: ...` or
        ` (...)`); empty when it names none (a config key, a file)."""
        head = (self.argument or "").split(": ")[0].split(" (")[0]
        names = tuple(head.split(", "))
        return names if head and all(n.isidentifier() for n in names) else ()

    def located(self, where: str) -> UserError:
        """The same mistake, said to be in `where` (before any place it already names)."""
        out = UserError(self.detail, argument=self.argument, expected=self.expected,
                        got=self.got, what=self.what,
                        where=where if self.where is None else f"{where}: {self.where}")
        return out

    def within(self, prefix: str) -> UserError:
        """The same mistake, its argument a key inside `prefix` (`mixing.layers` of arm
        erm: `arms.erm.mixing.layers`)."""
        return UserError(self.detail, argument=f"{prefix}.{self.argument}", expected=self.expected,
                         got=self.got, what=self.what, where=self.where)

    def _render_traceback_(self) -> list[str]:
        # IPython and Jupyter show an exception through this method when it has one: the
        # message alone, under the cell that made the mistake (the frames it passed through
        # are repflat's, and say nothing the message does not).
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines() or [""])]


def _restored(cls: type, args: tuple, state: dict) -> UserError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


def public(fn: Callable) -> Callable:
    """The API boundary: a UserError raised anywhere inside `fn` reaches its caller as if
    raised by `fn` itself (the internal frames and any exception it replaced dropped), so
    a notebook or a script shows the call and the one line. Any other exception is a bug
    and keeps its whole traceback. The wrapper's own frame is marked hidden
    (`__tracebackhide__`, which IPython and pytest honour)."""
    @functools.wraps(fn)
    def boundary(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841 - read by IPython and pytest
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            raise err.with_traceback(None) from None
    return boundary


class RunsFailed(UserError):
    """Runs of a sweep that failed, one line each (the CLI prints every line, exit status 2)."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = list(lines)


class RepflatWarning(UserWarning):
    """Something handled as documented that the user should still hear about; the CLI
    prints it as one line on stderr (`repflat: warning: ...`)."""


def expected(argument: str, what: str, got: object) -> UserError:
    """`argument: expected WHAT, got GOT` — the message every check uses."""
    return UserError(f"expected {what}, got {got!r}", argument=argument, expected=what, got=got)


def choice(argument: str, got: object, valid: Iterable[object]) -> object:
    """`got` if it is one of `valid`; else the error `argument: expected one of ..., got ...`."""
    valid = tuple(valid)
    if got not in valid:
        raise expected(argument, "one of " + ", ".join(map(str, valid)), got)
    return got


SYNONYMS = {  # what people type for a config key, from other tools' vocabularies
    "learning_rate": "lr", "lr_rate": "lr", "n_epochs": "epochs", "num_epochs": "epochs",
    "max_epochs": "epochs", "bs": "batch_size", "wd": "weight_decay", "l2": "weight_decay",
    "optimiser": "optimizer", "optim": "optimizer", "scheduler": "schedule",
    "lr_schedule": "schedule", "mixup_alpha": "alpha", "mix_layers": "layers",
    "eligible_layers": "layers", "arch": "name", "architecture": "name", "dataset": "data",
    "num_classes": "n_classes", "noise_std": "input_noise", "regularizer": "strategy",
}


def suggestions(got: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """Close matches of `got` among `valid`: a known synonym first, then by similarity."""
    valid = list(valid)
    # A synonym, also when misspelt itself ('learning_rat' → learning_rate → lr).
    known = [SYNONYMS[s] for s in difflib.get_close_matches(got, SYNONYMS, n=1, cutoff=0.85)]
    out = [k for k in dict.fromkeys(known) if k in valid]
    out += [v for v in valid if v.lower() == got.lower() and v not in out]  # 'ERM' → 'erm'
    out += [c for c in difflib.get_close_matches(got, valid, n=n, cutoff=0.5) if c not in out]
    return out[:n]


def unknown(argument: str, got: str, valid: Iterable[str], *, what: str = "name",
            hint: str | None = None) -> UserError:
    """An unknown name (a key, a layer, a split), with the close matches first and then
    every valid one: `argument: unknown WHAT 'got' (did you mean ...?); valid: ...`.
    `hint`, when given, says instead of the close matches what `got` is (` (...)`)."""
    valid = list(valid)
    if hint is None:
        close = suggestions(got, valid)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    shown = ", ".join(valid[:40]) + (f", … ({len(valid)} in all)" if len(valid) > 40 else "")
    return UserError(f"unknown {what} {got!r}{hint}; valid: {shown}", argument=argument,
                     expected=tuple(valid), got=got, what=what)


def first_line(err: BaseException, limit: int | None = 160) -> str:
    """What a foreign exception (numpy's, torch's, a parser's) says, in one line: its first
    line, cut to `limit` characters, or its type's name when it says nothing."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]
