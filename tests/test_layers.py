"""The house's layers, enforced: one import namespace, and who may import whom.

DESIGN.md, "Layout, v2": core (errors, progress, config, rundir) ← the torch side
(training, capture, and repflat.mixing, the front door of the mixing) and core ← the numpy side (repflat.analysis) ← the report
(repflat.analysis.report); the CLI imports everything. Computation never imports
presentation, the numpy side never imports torch, and nothing but `repflat` is
importable after install (the repository's analysis/ folder is repflat.analysis).
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
CORE = ("repflat.errors", "repflat.progress", "repflat.config", "repflat.rundir")
TORCH_SIDE = ("repflat.training", "repflat.capture", "repflat.mixing")
NUMPY_SIDE = ("repflat.analysis",)
REPORT = ("repflat.analysis.report",)


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


def layer(name: str) -> str:
    for tag, prefixes in (("report", REPORT), ("numpy", NUMPY_SIDE), ("torch", TORCH_SIDE),
                          ("core", CORE)):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return tag
    if name == "repflat.cli" or name.startswith("repflat.cli.") or name == "repflat.__main__":
        return "cli"
    return {"repflat": "facade"}.get(name, "core")


ALLOWED = {  # layer -> the layers of repflat it may import
    "core": {"core"},
    "torch": {"core", "torch"},
    "numpy": {"core", "numpy"},
    "report": {"core", "numpy", "report"},
    "facade": {"core"},
    "cli": {"core", "torch", "numpy", "report", "facade", "cli"},
}


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
        if top == "repflat" and layer(imported) not in ALLOWED[mine]:
            bad.append(f"line {line}: {imported} ({layer(imported)} layer)")
        if top == "analysis":
            bad.append(f"line {line}: {imported} (the namespace is repflat.analysis)")
    assert not bad, f"{name} ({mine}) imports: " + "; ".join(bad)


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
