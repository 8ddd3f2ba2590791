"""Sweeps in experiment files: a `grid` section crossed with chosen arms.

    grid:
      - arms: [manifold_mixup]          # arms of `arms` to vary (each is replaced by its points)
        params:                         # dotted run-config keys -> the values to try
          train.loss: [cross_entropy, mse]
          mixing.alpha: [0.5, 1, 2, 4]
          mixing.layers: {bottleneck: [bottleneck], hidden: [fc1, fc2, bottleneck, fc3]}
      - arms: [erm]
        params: {train.loss: [cross_entropy, mse]}

`grid` is one such block or a list of them. Every arm named in a block becomes one arm
per point of the product of its values, named `<arm>-<key><value>-...` in the order the
keys are written: `manifold_mixup-loss_mse-alpha2-layers_bottleneck`. A key is a leaf
(`mixing.alpha`) or a whole section (`model`, its values merged like an arm's override). A key is its last
dotted part (the full key with `_` for `.` when two keys of a block share it); a number
follows it directly (`alpha0.5`), any other value after `_` (`loss_mse`, `layers_fc1+fc2`
for a list, `norm_true`). A value given as a mapping {label: value} is named by its
label (`layers_hidden`), the way to keep long lists and nested values readable.

The size is counted first, from the lengths of the value lists (`arm_count`): a key may
sweep at most MAX_VALUES values, and the experiment may hold at most MAX_ARMS arms and
MAX_RUNS runs (repflat.config.loading), so a 1 kB grid promising 10^10 points is refused
before a single point is made. Every point is then checked, before anything runs: unknown keys (with did-you-mean),
each value against the key's type (`grid[0].params.mixing.alpha: expected ...`), names
that would collide with each other or with an arm, names that are not safe directory
names. `GridPoint` records, for every expanded arm, the arm it came from and its values,
which the analysis uses to compare each point with the baseline at the same values.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from repflat.strict import merge, parse
from repflat.errors import UserError, expected, unknown

MAX_VALUES = 1_000
"""Values one key of a grid may sweep."""
COUNT_CAP = 10**18
"""Where `arm_count` stops counting (thousands of keys would make numbers too long to print)."""

READABLE = re.compile(r"^[A-Za-z0-9_.+-]+$")
"""Characters an arm name built from values may hold: plain to type in a shell."""


@dataclass(frozen=True)
class GridPoint:
    """One expanded arm: the arm of `arms` it varies and its value of each swept key
    (numbers and strings as given; lists and mappings by their label)."""

    template: str
    values: dict[str, Any]


def dotted_keys(cls: type, prefix: str = "", *, sections: bool = False) -> list[str]:
    """Every leaf key of a config dataclass in dotted form; for a union of dataclasses
    (data, model), the keys of any member (the strict parse then checks the one chosen).
    With `sections`, the keys of whole sections too (`model`: a value merged like an
    arm's override)."""
    out = []
    for name, hint in get_type_hints(cls).items():
        key = f"{prefix}{name}"
        members = [hint] if dataclasses.is_dataclass(hint) else [
            a for a in get_args(hint) if dataclasses.is_dataclass(a)] if get_origin(hint) in (
                typing.Union, types.UnionType) else []
        if members:
            out += [key] if sections else []
            for member in members:
                out += [k for k in dotted_keys(member, f"{key}.", sections=sections) if k not in out]
        else:
            out.append(key)
    return out


def nested(key: str, value: Any) -> dict:
    """`mixing.alpha`, 2 -> {"mixing": {"alpha": 2}}."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _short(keys: list[str]) -> dict[str, str]:
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k.replace(".", "_")) for k, s in zip(keys, last)}


def _label(value: Any) -> str | None:
    """A value's form in an arm name (None: it needs a label)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # compact (2.0 -> 2, 1e-05), never rounded (1234567.0)
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return "+".join(map(str, value)) if value else "empty"
    return None


def _values(block: dict, key: str, where: str) -> list[tuple[str, Any, bool]]:
    """(label, value, numeric) for each value of `key`: from a list, or a mapping of labels."""
    given = block[key]
    if isinstance(given, dict) and given:
        pairs = [(str(label), value) for label, value in given.items()]
        named = True
    elif isinstance(given, list) and given:
        pairs = [(_label(v), v) for v in given]
        named = False
    else:
        raise expected(f"{where}.{key}", "a non-empty list of values, or a mapping of labels "
                       "to values", given)
    out = []
    for label, value in pairs:
        if label is None or not READABLE.match(label):
            raise expected(f"{where}.{key}", "values that read as a name (letters, digits, "
                           "_ . + -); give the others labels: {label: value, ...}", value)
        numeric = not named and isinstance(value, (int, float)) and not isinstance(value, bool)
        out.append((label, value, numeric))
    labels = [l for l, _, _ in out]
    if len(set(labels)) != len(labels):
        raise expected(f"{where}.{key}", "distinct values (as named: "
                       + ", ".join(labels) + ")", given)
    return out


def arm_count(grid: Any, arms: dict) -> int:
    """How many arms `expand` would make, counted from the lengths of the value lists
    alone (nothing expanded, so a 1 kB grid of 10^12 points costs nothing to count; the
    count stops near COUNT_CAP, far past any limit). A
    malformed grid counts as its arms unchanged: `expand` then names the mistake. A key
    sweeping more than MAX_VALUES values is refused here."""
    blocks = grid if isinstance(grid, list) else [grid]
    replaced: set = set()
    points = 0
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("params"), dict) \
                or not isinstance(block.get("arms"), list):
            continue
        where = f"grid[{i}]" if isinstance(grid, list) else "grid"
        product = 1
        for key, values in block["params"].items():
            n = len(values) if isinstance(values, (list, dict)) else 1
            if n > MAX_VALUES:
                raise expected(f"{where}.params.{key}", f"at most {MAX_VALUES:,} values",
                               f"{n:,} values")
            product = min(product * n, COUNT_CAP)
        chosen = {a for a in block["arms"] if isinstance(a, str) and a in arms}
        replaced |= chosen
        points = min(points + len(chosen) * product, COUNT_CAP)
    return len(arms) - len(replaced) + points


def expand(grid: Any, arms: dict, base: dict, run_cls: type) -> tuple[dict, dict[str, GridPoint]]:
    """The arms with every gridded arm replaced by its points (in its place, in order),
    and each point's GridPoint. Checks everything the module docstring lists."""
    blocks = grid if isinstance(grid, list) else [grid]
    if not blocks or not all(isinstance(b, dict) for b in blocks):
        raise expected("grid", "a mapping {arms: [...], params: {...}} or a list of them", grid)
    valid_keys = dotted_keys(run_cls, sections=True)
    points: dict[str, GridPoint] = {}
    replaced: dict[str, list[str]] = {}
    overrides: dict[str, dict] = {}
    for i, block in enumerate(blocks):
        where = f"grid[{i}]" if isinstance(grid, list) else "grid"
        for key in block:
            if key not in ("arms", "params"):
                raise unknown(where, str(key), ["arms", "params"], what="key")
        chosen = block.get("arms")
        if not isinstance(chosen, list) or not chosen or not all(isinstance(a, str) for a in chosen):
            raise expected(f"{where}.arms", "a non-empty list of arm names", chosen)
        for arm in chosen:
            if arm not in arms:
                raise unknown(f"{where}.arms", arm, [str(a) for a in arms], what="arm")
        params = block.get("params")
        if not isinstance(params, dict) or not params:
            raise expected(f"{where}.params", "a non-empty mapping of dotted config keys "
                           "(mixing.alpha) to lists of values", params)
        for key in params:
            if key not in valid_keys:
                raise unknown(f"{where}.params", str(key), valid_keys, what="key")
            if key in ("name", "seed"):
                raise UserError("set by the experiment; sweep it there",
                                argument=f"{where}.params.{key}")
        short = _short(list(params))
        axes = {key: _values(params, key, f"{where}.params") for key in params}
        for arm in chosen:
            own = merge(base, arms[arm] or {})
            for key, values in axes.items():  # each value alone, so its error names the key
                for _, value, _ in values:
                    parse(run_cls, merge(own, nested(key, value)) | {"name": arm, "seed": 0},
                          f"{where}.params")
            for combo in itertools.product(*axes.values()):
                name = "-".join([arm] + [short[k] + ("" if numeric else "_") + label
                                         for k, (label, _, numeric) in zip(params, combo)])
                if len(name) > 100:
                    raise expected(where, "arm names of at most 100 characters (they name "
                                   "directories); label long values ({label: value})", name)
                if name in points or (name in arms and name not in chosen):
                    raise UserError(f"two arms would be named {name!r}; rename an arm "
                                    "or label the values ({label: value})", argument=where)
                override = arms[arm] or {}
                for key, (_, value, _) in zip(params, combo):
                    override = merge(override, nested(key, value))
                overrides[name] = override
                points[name] = GridPoint(arm, {k: (value if numeric else label) for k, (label, value, numeric)
                                               in zip(params, combo)})
                replaced.setdefault(arm, []).append(name)
    out = {}
    for arm, override in arms.items():
        for name in replaced.get(arm, [arm]):
            out[name] = overrides.get(name, override)
    return out, points
