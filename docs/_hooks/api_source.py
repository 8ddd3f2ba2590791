"""mkdocs hook: the source tree griffe reads for the API reference.

The repository's top-level analysis/ folder is installed as `repflat.analysis`
(pyproject.toml's package-dir), a mapping griffe cannot follow from the folders alone
(it finds repflat/ and no analysis/ inside it), and an editable install may point at
another checkout. So before each build the installed layout is rebuilt from this
checkout's own files, .py only, under build/docs-api/: repflat/ with analysis/ inside it.
griffe reads it statically (mkdocs.yml: `paths: [build/docs-api]`); nothing is imported.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[2]
STAGE = ROOT / "build" / "docs-api"


@event_priority(100)  # before mkdocstrings' on_config, which resolves `paths` once
def on_config(config, **kwargs):
    if STAGE.exists():
        shutil.rmtree(STAGE)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "repflat", STAGE / "repflat", ignore=ignore)
    shutil.copytree(ROOT / "analysis", STAGE / "repflat" / "analysis", ignore=ignore)
    return config
