"""Strict conversion between plain YAML data and frozen dataclasses.

The one parser of every typed thing repflat reads (run configs, experiments, launcher
and analysis settings): public, and below both config and the run directory, which use
it. `parse(Cls, data, where)` accepts exactly the keys `Cls` declares, with exactly their
types, and names the offending key in dotted form ("arms.mixup.mixing.alpha") when it
does not. `to_plain(obj)` writes a dataclass back as YAML-ready data, so a resolved
config round-trips: `parse(Cls, to_plain(cfg)) == cfg`, and `dump_yaml` writes it.

Only the annotation forms the configs use are supported: bool, int, float, str,
Literal[...], tuple[X, ...], X | None, dict[str, X], object (any plain YAML value),
nested dataclasses, and unions of dataclasses that each have a `name: Literal[...]` field
(chosen by the `name` key; when it is absent, by a key a member marks as its own,
`TAGGED_BY`, else the first member is the default).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from repflat.errors import UserError, expected, unknown
from repflat.yamlnumbers import Dumper

T = TypeVar("T")


class FieldError(ValueError):
    """Raised by a dataclass's __post_init__ check: `FieldError(field, expected, got)`."""

    def __init__(self, field: str, what: str, got: object):
        super().__init__(field, what, got)
        self.field, self.what, self.got = field, what, got


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


PLURAL = {bool: "trues or falses", int: "integers", float: "finite numbers", str: "strings"}


def _describe(tp: Any, plural: bool = False) -> str:
    origin = get_origin(tp)
    if plural and tp in PLURAL:
        return PLURAL[tp]
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(get_args(tp)[0], plural=True)}"
    if origin is dict:
        return f"a mapping of names to {_describe(get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _tagged(args: tuple) -> dict[str, type]:
    """{name: class} when every member of a union is a dataclass with a Literal `name`."""
    out = {}
    for arg in args:
        if arg is type(None):
            continue
        if not dataclasses.is_dataclass(arg):
            return {}
        hint = get_type_hints(arg).get("name")
        if get_origin(hint) is not Literal:
            return {}
        out.update({n: arg for n in get_args(hint)})
    return out


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, where)
    if origin is Literal:
        if value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}:
            return value
        raise expected(where, _describe(tp), value)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        tagged = _tagged(args)
        if tagged:  # a union of dataclasses, told apart by their `name` field
            # without `name`: the member a key of its own marks (`target`), else the first
            marked = [n for n, c in tagged.items() if isinstance(value, dict)
                      and getattr(c, "TAGGED_BY", None) in value]
            name = value.get("name", (marked or list(tagged))[0]) if isinstance(value, dict) else None
            if name not in tagged:
                raise expected(_join(where, "name"), "one of " + ", ".join(map(repr, tagged)), name)
            return parse(tagged[name], value, where)
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except UserError:
                continue
        raise expected(where, _describe(tp), value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise expected(where, _describe(tp), value)
        return tuple(_convert(get_args(tp)[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise expected(where, _describe(tp), value)
        return {str(k): _convert(get_args(tp)[1], v, _join(where, str(k))) for k, v in value.items()}
    if tp is object:  # any plain YAML value (a user class's keyword arguments)
        return _plain_value(value, where)
    # bool is an int subclass in Python; a YAML `true` for an epoch count is a mistake.
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:  # 1e5
            raise expected(where, f"an integer (write {int(value)})", value)
    elif tp is float:  # NaN and ±Inf (YAML .nan, .inf) are never a setting
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a config author used an unsupported annotation
        raise TypeError(f"unsupported annotation {tp!r} at {where}")
    raise expected(where, _describe(tp), value)


def _plain_value(value: Any, where: str) -> Any:
    """`value` if it is plain YAML data: null, true/false, numbers, strings, and lists and
    mappings (string keys) of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain_value(v, _join(where, k)) for k, v in value.items()}
    raise expected(where, "plain YAML data (numbers, strings, lists, mappings)", value)


def parse(cls: type[T], data: Any, where: str = "") -> T:
    """Build `cls` (a dataclass, or a tagged union of them) from a mapping, refusing
    unknown keys and wrong types."""
    if not dataclasses.is_dataclass(cls):
        return _convert(cls, data, where or "config")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise expected(where or "config", f"a mapping ({cls.__name__})", data)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise unknown(where or "config", str(key), fields, what="key")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise expected(_join(where, name), f"a value ({_describe(hints[name])})", None)
    try:
        return cls(**kwargs)
    except FieldError as err:
        raise expected(_join(where, err.field), err.what, err.got) from None


def to_plain(obj: Any) -> Any:
    """A dataclass (or nested containers of them) as YAML-ready lists, dicts and scalars.

    A dataclass may name fields that do not apply to it as it is set (`inapplicable()`,
    e.g. α of ERM): they are left out, so a resolved config shows what the run used."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        skip = obj.inapplicable() if hasattr(obj, "inapplicable") else set()
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.name not in skip}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def merge(base: dict, override: dict) -> dict:
    """Deep merge of plain mappings: `override` wins, nested mappings merge key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def dump_yaml(data: object) -> str:
    """YAML text of a config (dataclasses included) or plain data, keys in their order:
    the one form every YAML file repflat writes, and every config a report shows, takes."""
    return yaml.dump(to_plain(data), Dumper=Dumper, sort_keys=False, default_flow_style=None,
                     allow_unicode=True)
