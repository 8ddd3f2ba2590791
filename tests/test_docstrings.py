"""The library API is documented: numpydoc docstrings with Parameters and Returns.

Walks `repflat.__all__` and `repflat.analysis.__all__` (lazy names resolved), the public
methods of `Features` and `MemoryFeatures`, and the seaborn-style plotting functions and
`BoundaryDisplay`. Each function's docstring must open with a one-line summary and hold
a `Returns` section and, when it takes parameters, a `Parameters` section naming every
one of them; a class documents its constructor's parameters in its own docstring (or its
`__init__`'s). `repflat.extract` and `repflat.train` import torch when resolved, so they
are read in a fresh interpreter: this one keeps whatever torch state it had.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import subprocess
import sys

import pytest

import repflat
import repflat.analysis
from repflat.analysis.report.plotting import boundary, plots

TORCH_SIDE = ("extract", "train", "model_proba", "layers", "Mixup", "soft_cross_entropy")
"""repflat's lazy names that import torch."""
PLOTTING = [plots.plot_spectrum, plots.plot_metric_over_epochs, plots.plot_metric_heatmap,
            boundary.BoundaryDisplay, boundary.BoundaryDisplay.from_grid,
            boundary.BoundaryDisplay.from_function, boundary.BoundaryDisplay.from_features,
            boundary.BoundaryDisplay.plot, boundary.BoundaryDisplay.response,
            boundary.BoundaryDisplay.image]


def sections(doc: str) -> dict[str, list[str]]:
    """numpydoc sections of `doc`: a header line underlined by as many dashes, then the
    lines up to the next header."""
    lines = inspect.cleandoc(doc).splitlines()
    found, current, i = {}, None, 0
    while i < len(lines):
        header, underline = lines[i].strip(), lines[i + 1].strip() if i + 1 < len(lines) else ""
        if header and underline and set(underline) == {"-"} and len(underline) == len(header):
            current = found.setdefault(header, [])
            i += 2
            continue
        if current is not None:
            current.append(lines[i])
        i += 1
    return found


def documented_names(parameters: list[str]) -> set[str]:
    """The names a Parameters section documents: its unindented lines, `a, b : type`."""
    names = set()
    for line in parameters:
        if line.strip() and not line.startswith(" "):
            for name in line.split(" : ")[0].split(","):
                names.add(name.strip().lstrip("*"))
    return names


def parameter_names(obj) -> list[str]:
    """What a caller passes: the signature's parameters but self and cls."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p not in ("self", "cls")]


def problems(name: str, doc: str | None, params: list[str], is_class: bool,
             init_doc: str | None = None) -> list[str]:
    if not doc or not doc.strip():
        return [f"{name}: no docstring"]
    lines = inspect.cleandoc(doc).splitlines()
    out = []
    if len(lines) > 1 and lines[1].strip():
        out.append(f"{name}: the summary is not one line followed by a blank line")
    found = sections(doc)
    if is_class and "Parameters" not in found and init_doc:
        found = sections(init_doc)
    if params:
        if "Parameters" not in found:
            out.append(f"{name}: no Parameters section")
        else:
            missing = [p for p in params if p not in documented_names(found["Parameters"])]
            if missing:
                out.append(f"{name}: Parameters does not document {', '.join(missing)}")
    if not is_class and "Returns" not in found:
        out.append(f"{name}: no Returns section")
    return out


def check(name: str, obj) -> list[str]:
    if inspect.isclass(obj):
        init = obj.__dict__.get("__init__")
        return problems(name, obj.__doc__, parameter_names(obj), True,
                        getattr(init, "__doc__", None))
    return problems(name, inspect.getdoc(obj), parameter_names(obj), False)


def public_methods(cls) -> dict[str, object]:
    return {f"{cls.__name__}.{n}": getattr(cls, n) for n in dir(cls)
            if not n.startswith("_") and inspect.isroutine(getattr(cls, n))}


def numpy_side() -> dict[str, object]:
    """Every documented object that is imported without torch, by its public name."""
    objects = {f"repflat.{n}": getattr(repflat, n) for n in repflat.__all__
               if n not in TORCH_SIDE and n != "__version__"}
    objects |= {f"repflat.analysis.{n}": getattr(repflat.analysis, n)
                for n in repflat.analysis.__all__}
    objects |= public_methods(repflat.Features) | public_methods(repflat.MemoryFeatures)
    objects |= {f"{o.__module__.rpartition('.')[2]}.{o.__qualname__}": o for o in PLOTTING}
    return objects


def test_public_api_lists_what_it_is_checked_against():
    assert set(repflat.__all__) == {"Features", "MemoryFeatures", *TORCH_SIDE, "__version__"}
    assert "analyze" in repflat.analysis.__all__
    from repflat.analysis.report.outputs import analyze

    assert repflat.analysis.analyze is analyze  # the lazy name resolves to the writer
    for method in ("array", "labels", "to_frame", "class_name", "final_epoch"):
        assert f"Features.{method}" in numpy_side() and f"MemoryFeatures.{method}" in numpy_side()


def test_numpy_side_docstrings_have_parameters_and_returns():
    torch_before = "torch" in sys.modules
    found = [p for name, obj in numpy_side().items() for p in check(name, obj)]
    assert not found, "\n".join(found)
    assert ("torch" in sys.modules) == torch_before, "reading the docstrings imported torch"


SUBPROCESS = """
import inspect, json, repflat
out = {}
for name in %r:
    obj = getattr(repflat, name)
    out[name] = {"doc": inspect.getdoc(obj), "is_class": inspect.isclass(obj),
                 "params": [p for p in inspect.signature(obj).parameters
                            if p not in ("self", "cls")]}
print(json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_torch_side_docstrings_have_parameters_and_returns():
    done = subprocess.run([sys.executable, "-c", SUBPROCESS % (TORCH_SIDE,)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    read = json.loads(done.stdout.strip().splitlines()[-1])
    found = [p for name, r in read.items()
             for p in problems(f"repflat.{name}", r["doc"], r["params"], r["is_class"])]
    assert not found, "\n".join(found)


def test_the_checker_finds_what_is_missing():
    def undocumented(x, y=1):
        """Summary.

        Parameters
        ----------
        x : int
            A value.
        """

    assert problems("f", undocumented.__doc__, ["x", "y"], False) == [
        "f: Parameters does not document y", "f: no Returns section"]
    assert problems("g", None, [], False) == ["g: no docstring"]
    assert problems("h", "Two\nline summary.\n\nReturns\n-------\nint\n", [], False) == [
        "h: the summary is not one line followed by a blank line"]
