"""The house's layers, enforced: one import namespace, and who may import whom.

Every module of repflat stands on a declared floor (FLOORS) of one side: the torch-free
core at the bottom (errors; safe files and the strict parser; config; the run directory,
which holds a run config), then two sides that never meet: the torch side (the neutral
floor `repflat.base` that capture and training both use, capture, training, which
captures its runs through capture, and `repflat.mixing`, the front door of your own
loop's mixing) and the numpy side (`repflat.analysis`, then its report). A module may
import only from floors below its own, on its side or in the core, or from its own
package; so no arrow runs back up, between packages or between the modules of one
(no circle). The CLI imports everything. The numpy side and the core never import
torch, `import repflat` stays torch-free, and nothing but `repflat` is importable after
install (the repository's analysis/ folder is repflat.analysis).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"repflat": ROOT / "repflat", "repflat.analysis": ROOT / "analysis"}
TORCH = ("torch", "torchvision")
LAZY = ("umap",)  # ~10 s to import (numba): only inside the function that uses it
FLOORS = {  # module or package prefix -> (floor, side); the longest prefix decides
    "repflat.version": (0, "core"), "repflat.errors": (0, "core"), "repflat.progress": (0, "core"), "repflat.yamlnumbers": (0, "core"),
    "repflat.files": (1, "core"), "repflat.strict": (1, "core"), "repflat.safenames": (1, "core"),
    "repflat.config": (2, "core"),
    "repflat.rundir": (3, "core"),
    "repflat": (4, "facade"),  # the package face: `repflat.Features`, lazy torch-side names
    "repflat.base": (5, "torch"), "repflat.capture": (6, "torch"),
    "repflat.training": (7, "torch"), "repflat.mixing": (8, "torch"),
    "repflat.analysis": (5, "numpy"), "repflat.analysis.report": (6, "numpy"),
    "repflat.cli": (9, "cli"), "repflat.__main__": (10, "cli"),
}
PACKAGES = sorted(FLOORS, key=len, reverse=True)


def modules() -> dict[str, Path]:
    """Every module of the installed namespace, by dotted name."""
    out = {}
    for package, root in SOURCES.items():
        for path in sorted(root.rglob("*.py")):
            if package == "repflat" and root / "analysis" in path.parents:
                continue
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def unit(name: str) -> str:
    """The declared package or module `name` belongs to."""
    return next(p for p in PACKAGES if name == p or name.startswith(p + "."))


def layer(name: str) -> str:
    """The side of `name`: core, torch, numpy, report (the numpy side's presentation),
    facade or cli."""
    u = unit(name)
    return "report" if u == "repflat.analysis.report" else FLOORS[u][1]


def may_import(importer: str, imported: str) -> bool:
    """Within one package, or down to a lower floor of the same side or of the core."""
    a, b = unit(importer), unit(imported)
    if a == b:
        return True
    (fa, sa), (fb, sb) = FLOORS[a], FLOORS[b]
    if sa == "cli":
        return True
    if b == "repflat":
        return False  # the face imports the layers, never the other way (nor sideways)
    return fb < fa and (sb == "core" or sb == sa)


def imports(path: Path, name: str) -> list[tuple[str, int]]:
    """Absolute module names imported by a file, except inside a package's `__getattr__`
    (PEP 562 lazy attributes of a facade, resolved only when asked for)."""
    tree = ast.parse(path.read_text())
    found = []
    lazy = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            and path.name == "__init__.py" for n in ast.walk(f)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in lazy:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).rstrip(".")
            found += [(f"{base}.{a.name}" if base in SUBPACKAGES else base, node.lineno) for a in node.names]
    return found


SUBPACKAGES = {n for n, p in modules().items() if p.name == "__init__.py"}


def test_pyproject_lists_every_package_and_maps_analysis():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(setup["packages"]) == sorted(SUBPACKAGES)
    assert setup["package-dir"] == {"repflat.analysis": "analysis"}


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_respect_the_layers(name):
    mine = layer(name)
    bad = []
    tree = ast.parse(modules()[name].read_text())
    for node in tree.body:  # module level
        for alias in getattr(node, "names", []) if isinstance(node, (ast.Import, ast.ImportFrom)) else []:
            full = node.module if isinstance(node, ast.ImportFrom) and node.module else alias.name
            if full.split(".")[0] in LAZY:
                bad.append(f"line {node.lineno}: {full} at module level (import it where it is used)")
    for imported, line in imports(modules()[name], name):
        top = imported.split(".")[0]
        if mine in ("core", "numpy", "report", "facade") and top in TORCH:
            bad.append(f"line {line}: {imported} (torch side)")
        if top == "repflat" and not may_import(name, imported):
            bad.append(f"line {line}: {imported} (floor {FLOORS[unit(imported)]} from "
                       f"{FLOORS[unit(name)]})")
        if top == "analysis":
            bad.append(f"line {line}: {imported} (the namespace is repflat.analysis)")
    assert not bad, f"{name} ({mine}) imports: " + "; ".join(bad)


def test_every_module_stands_on_a_declared_floor():
    for name in modules():
        assert unit(name) in FLOORS, name
    undeclared = [n for n in modules() if unit(n) == "repflat" and n != "repflat"]
    assert not undeclared, f"declare a floor for {undeclared} in FLOORS"


def test_the_floors_forbid_every_arrow_back_up():
    """The rule itself: for every pair of declared units, one of the two arrows is
    forbidden, and the sides never meet."""
    units = list(FLOORS)
    for a in units:
        for b in units:
            if a != b and "cli" not in (FLOORS[a][1], FLOORS[b][1]):
                assert not (may_import(a, b) and may_import(b, a)), (a, b)
    assert not may_import("repflat.capture.engine", "repflat.training.loop")
    assert not may_import("repflat.base.layers", "repflat.capture.engine")
    assert not may_import("repflat.config.loading", "repflat.rundir.names")
    assert not may_import("repflat.analysis.tidy", "repflat.base.layers")
    assert not may_import("repflat.training.loop", "repflat.analysis.tidy")


CIRCLES_CHECKED = ("core", "facade", "torch", "cli", "numpy", "report")
"""Every side: no module may import itself back through others, imports inside
functions included."""


def test_no_module_imports_itself_back_through_others():
    """No circle of modules, within a package either (imports inside functions count)."""
    names = {n: p for n, p in modules().items() if layer(n) in CIRCLES_CHECKED}
    graph = {n: {i for i, _ in imports(p, n) if i in names and i != n} for n, p in names.items()}
    faces = {n for n, p in names.items() if p.name == "__init__.py"}
    for n in graph:  # a package face only hands names on: its arrows close no circle
        graph[n] -= {f for f in faces if n.startswith(f + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                raise AssertionError("circle: " + " -> ".join(path[path.index(m):] + [m]))
            if m not in state:
                visit(m)
        path.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_the_numpy_side_and_core_import_no_torch_at_run_time():
    names = [n for n in modules() if layer(n) in ("core", "numpy", "report", "facade")]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            "loaded = [m for m in ('torch', 'torchvision', 'umap') if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "import matplotlib\n"
            "assert matplotlib.get_backend() is not None\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_users_own_analysis_module_breaks_nothing(tmp_path):
    """A research folder with its own analysis.py and analysis/ (both would break repflat if
    it installed a top-level `analysis`): imports and the CLI still work from there."""
    (tmp_path / "analysis.py").write_text("raise ImportError('the user analysis.py was imported')\n")
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "__init__.py").write_text("raise ImportError('the user analysis/ was imported')\n")
    code = ("import repflat.analysis\n"
            "from repflat.analysis.spectra import class_spectra\n"
            "from repflat.analysis import pipeline\n"
            "import repflat, sys\n"
            "assert repflat.analysis.__file__.startswith(%r), repflat.analysis.__file__\n" % str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cli = subprocess.run([sys.executable, "-m", "repflat", "analyze", "--help"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert cli.returncode == 0 and "usage: repflat analyze" in cli.stdout, cli.stderr
    # and there is no top-level `analysis` of repflat's to collide with (what the install
    # provides: a checkout's root on PYTHONPATH, as when testing a worktree, exposes its
    # folders by construction, so it is taken off for this one check)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if p and Path(p).resolve() != ROOT))
    elsewhere = subprocess.run([sys.executable, "-c", "import analysis"], cwd="/",
                               capture_output=True, text=True, env=env)
    assert elsewhere.returncode != 0 and "No module named 'analysis'" in elsewhere.stderr
