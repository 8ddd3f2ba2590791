"""`key=value` on the command line (`repflat run FILE train.epochs=5`), applied to the
file's mapping before it is parsed, so they are checked as strictly as the file (types
by the schema, unknown keys with did-you-mean) and recorded in every resolved config (a
run's identity changes with them).

A key is dotted. In an experiment file, a run-config key (`train.epochs`, `mixing.alpha`,
`model.kwargs.width`) applies to every run: it is set in `base` and in every arm, over
the arm's own value (a key a `grid` sweeps stays the grid's); any key of the file may be
named too (`seeds`, `analysis.layers`, `arms.mm.mixing.alpha`, `base.train.lr`). A value
is YAML, read as the file is (`5`, `3e-3`, `[fc1, neck]`, `{width: 8}`, `null`).
"""
from __future__ import annotations

import dataclasses
from typing import get_origin, get_type_hints

import yaml

from repflat.config.grid import dotted_keys
from repflat.config.launcher import LauncherConfig
from repflat.config.schema import AnalysisConfig, RunConfig, TargetModel
from repflat.errors import UserError, unknown
from repflat.strict import merge
from repflat.yamlnumbers import load as yaml_load

WHERE = "command line"
EXPERIMENT_KEYS = ("name", "description", "seeds", "base", "arms", "grid", "datasets",
                   "analysis", "launcher")
RUN_KEYS = dotted_keys(RunConfig, sections=True)
OPEN = tuple(f"model.{f.name}" for f in dataclasses.fields(TargetModel)
             if get_origin(get_type_hints(TargetModel)[f.name]) is dict)
"""Keys whose values are mappings of the user's names (a class's kwargs): any key below."""


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, object]:
    """{dotted key: value} of `key=value` items, each value read as YAML."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or any(c.isspace() for c in key):
            raise UserError(f"expected key=value (e.g. train.epochs=5), got {item!r}", where=WHERE)
        try:
            value = yaml_load(text) if text.strip() else None
        except yaml.YAMLError as err:
            raise UserError(f"{item}: the value is not YAML ({str(err).splitlines()[0]})",
                            where=WHERE) from None
        out[key] = value
    return out


def _unknown(got: str, valid, what: str = "key") -> UserError:
    """repflat.errors.unknown's message, said to be on the command line."""
    err = unknown(WHERE, got, list(valid), what=what)
    return UserError(err.detail, expected=err.expected, got=err.got, what=what, where=WHERE)


def _check_run_key(key: str, shown: str) -> None:
    if key in ("name", "seed"):  # only an experiment's keys are checked here
        raise UserError("set by the experiment (its arm names, its seeds)", argument=shown, where=WHERE)
    if key in RUN_KEYS or any(key.startswith(k + ".") for k in OPEN):
        return
    raise _unknown(shown, RUN_KEYS)


def _check_experiment_key(key: str, data: dict) -> None:
    head, _, rest = key.partition(".")
    if head not in EXPERIMENT_KEYS:
        return _check_run_key(key, key)
    if head in ("base",):
        return _check_run_key(rest, key)
    if head == "arms" and rest:
        arms = data.get("arms") if isinstance(data.get("arms"), dict) else {}
        arm = next((a for a in sorted(map(str, arms), key=len, reverse=True)
                    if rest == a or rest.startswith(a + ".")), None)
        if arm is None:
            raise _unknown(rest.split(".")[0], map(str, arms), what="arm")
        if rest != arm:
            _check_run_key(rest[len(arm) + 1:], key)
    for section, cls in (("analysis", AnalysisConfig), ("launcher", LauncherConfig)):
        if head == section and rest and rest not in dotted_keys(cls):
            raise _unknown(key, [f"{section}.{k}" for k in dotted_keys(cls)])
    return None


def _nested(key: str, value: object) -> dict:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def apply_overrides(data: dict, overrides: dict[str, object], *, experiment: bool) -> dict:
    """The file's mapping with the overrides set (see the module's docstring)."""
    for key, value in overrides.items():
        if experiment:
            _check_experiment_key(key, data)
            if key.split(".")[0] not in EXPERIMENT_KEYS:  # a run key: every run
                data = merge(data, {"base": _nested(key, value)})
                arms = data.get("arms")
                if isinstance(arms, dict):
                    data = data | {"arms": {a: merge(o or {}, _nested(key, value)) for a, o in arms.items()}}
                continue
        else:
            if key not in ("name", "seed"):
                _check_run_key(key, key)
        if key.split(".")[0] == "arms" and experiment:  # arm names may hold dots
            rest = key[len("arms."):]
            arm = next(a for a in sorted(map(str, data["arms"]), key=len, reverse=True)
                       if rest == a or rest.startswith(a + "."))
            sub = rest[len(arm) + 1:]
            override = data["arms"][arm] or {}
            new = value if not sub else merge(override, _nested(sub, value))
            data = data | {"arms": data["arms"] | {arm: new}}
        else:
            data = merge(data, _nested(key, value))
    return data


def said_by(err: UserError, overrides: dict[str, object]) -> bool:
    """Whether the mistake is in a key the command line set (then it is said to be
    there, not at a line of the file): its key, within an arm or base, or below it."""
    key = (err.argument or "").split(" (")[0]
    bare = "".join(part.split("[")[0] for part in key.split("]"))
    return any(bare == k or bare.endswith("." + k) or bare.startswith(k + ".") or (f".{k}." in bare)
               for k in overrides)
