"""The documentation site covers the public API: every stable name of `repflat` and
`repflat.analysis` has its entry in docs/api/ (mkdocstrings renders it from the
docstring; `make docs` builds the site strictly, so a broken entry fails there)."""
from __future__ import annotations

import re
from pathlib import Path

import repflat
import repflat.analysis as ra

DOCS = Path(__file__).resolve().parent.parent / "docs"


def documented(page: str) -> set[str]:
    """Names a page renders: the last part of each `::: dotted.path`, or its `heading`."""
    text = (DOCS / "api" / page).read_text()
    names = {m.rsplit(".", 1)[-1] for m in re.findall(r"^::: ([\w.]+)", text, re.M)}
    return names | {h.rsplit(".", 1)[-1] for h in re.findall(r"^\s+heading: ([\w.]+)", text, re.M)}


def test_every_public_name_of_repflat_has_an_api_entry():
    assert set(repflat.__all__) - {"__version__"} <= documented("repflat.md")


def test_every_stable_name_of_repflat_analysis_has_an_api_entry():
    assert set(ra.__all__) <= documented("analysis.md")


def test_the_lazy_names_point_at_the_modules_that_define_them():
    """A lazy name's entry renders the object `repflat.NAME` resolves to (read from the
    module map, without importing torch)."""
    text = (DOCS / "api" / "repflat.md").read_text()
    for name, module in repflat._LAZY.items():
        assert f"::: {module}.{name}\n" in text, name
