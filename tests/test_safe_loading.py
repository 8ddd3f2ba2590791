"""No code from files: the project never calls a loader that can execute what it reads.

Checked statically over every module of repflat/, analysis/ and benchmarks/: no
pickle/marshal/shelve/dill/joblib loading, no `np.load(..., allow_pickle=True)`, no
`torch.load` without `weights_only=True`, no `yaml.load`/`full_load`/`unsafe_load`
(only `yaml.safe_load`). The checker is itself tested on code that breaks each rule.
Manifest paths are confined to the run directory by repflat.rundir.features (tests/test_store.py,
tests/test_fuzz.py).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOTS = ("repflat", "analysis", "benchmarks")
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "joblib",
                  "cloudpickle"}
SAFE_YAML_HOME = "repflat/yamlnumbers.py"
"""The one module allowed `yaml.load(..., Loader=Loader)`: its Loader is a SafeLoader
(YAML 1.2's floats added), checked below to construct no Python object."""
UNSAFE_YAML = {"load", "full_load", "unsafe_load", "load_all", "full_load_all", "unsafe_load_all"}


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return ""


def keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def violations(source: str, filename: str = "<code>") -> list[str]:
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            # importing an exception type (pickle.UnpicklingError) is fine; a loader is not
            for alias in node.names:
                if alias.name.startswith("load") or alias.name == "Unpickler":
                    found.append(f"{filename}:{node.lineno}: imports {node.module}.{alias.name}")
            continue
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        if name.split(".")[0] in UNSAFE_MODULES and (last.startswith("load") or last == "Unpickler"):
            found.append(f"{filename}:{node.lineno}: {name}")
        if last == "load" and name.split(".")[0] in ("np", "numpy") and is_true(keyword(node, "allow_pickle")):
            found.append(f"{filename}:{node.lineno}: {name}(allow_pickle=True)")
        if name in ("torch.load",) and not is_true(keyword(node, "weights_only")):
            found.append(f"{filename}:{node.lineno}: torch.load without weights_only=True")
        if name.split(".")[0] == "yaml" and last in UNSAFE_YAML and not (
                filename.endswith(SAFE_YAML_HOME) and name == "yaml.load"
                and dotted(keyword(node, "Loader")) == "Loader"):
            found.append(f"{filename}:{node.lineno}: {name} (use yaml.safe_load)")
    return found


def project_files() -> list[Path]:
    return sorted(p for root in ROOTS for p in Path(root).rglob("*.py"))


def test_the_project_never_loads_code_from_files():
    files = project_files()
    assert len(files) > 40
    found = [v for p in files for v in violations(p.read_text(), str(p))]
    assert found == []


@pytest.mark.parametrize("code", [
    "import pickle\npickle.load(open('f', 'rb'))",
    "from pickle import loads",
    "import joblib\njoblib.load('m')",
    "import pickle\npickle.Unpickler(open('f', 'rb')).load()",
    "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
    "import torch\ntorch.load('c.pt')",
    "import torch\ntorch.load('c.pt', weights_only=False)",
    "import yaml\nyaml.load(open('c.yaml'))",
    "import yaml\nyaml.unsafe_load('a: 1')",
])
def test_the_checker_catches_each_unsafe_call(code):
    assert violations(code)


@pytest.mark.parametrize("code", [
    "import numpy as np\nnp.load('x.npy', allow_pickle=False)",
    "import torch\ntorch.load('c.pt', map_location='cpu', weights_only=True)",
    "import yaml\nyaml.safe_load('a: 1')",
    "import json\njson.load(open('m.json'))",
])
def test_the_checker_allows_safe_calls(code):
    assert violations(code) == []


def test_the_one_yaml_loader_is_safe():
    """repflat.yamlnumbers.Loader, which the checker lets yaml.load use in its own module,
    is PyYAML's safe loader: a document naming a Python object is refused, not built."""
    import yaml

    from repflat import yamlnumbers

    assert issubclass(yamlnumbers.Loader, yaml.SafeLoader)
    with pytest.raises(yaml.constructor.ConstructorError):
        yamlnumbers.load("!!python/object/apply:os.getcwd []")
    assert yamlnumbers.load("lr: 3e-3") == {"lr": 0.003}
    assert violations("import yaml\nyaml.load(t, Loader=Loader)\n", "repflat/other.py")
    assert not violations("import yaml\nyaml.load(t, Loader=Loader)\n", SAFE_YAML_HOME)
    assert violations("import yaml\nyaml.load(t, Loader=yaml.Loader)\n", SAFE_YAML_HOME)
