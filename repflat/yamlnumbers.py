"""YAML 1.2's numbers in PyYAML, which reads YAML 1.1.

YAML 1.1 reads a float only with a dot and a signed exponent (`3.0e-3`), so `lr: 3e-3`,
`1e5` or `1.5e3`, floats in YAML 1.2 (and to anyone who writes Python or C), came back as
strings and a config refused them. `Loader` reads them as floats; `Dumper` knows it does,
so a string that looks like one (an arm named `1e5`) is written quoted and read back a
string. Everything else is PyYAML's safe loader and dumper (no Python objects).
"""
from __future__ import annotations

import re

import yaml

EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")
"""A YAML 1.2 (core schema) float with an exponent; the forms without one are YAML 1.1's
floats already."""


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading YAML 1.2's exponent floats as floats."""


class Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting strings `Loader` would read as floats."""


for _cls in (Loader, Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


def load(text: str):
    """The YAML document in `text`, read by `Loader` (safe: no Python objects). The one
    place the project calls yaml.load (tests/test_safe_loading.py allows it here only)."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader
