"""repflat: what a regularizer does to the hidden representations of a network.

The torch side (data, models, mixing, training, capture) lives in submodules that are
imported on use; importing `repflat` itself, or its torch-free modules (`config`,
`store`, `rundir`, `errors`), never imports torch, so the analysis side can share them.
"""
import sys as _sys
from importlib.machinery import PathFinder as _PathFinder
from pathlib import Path as _Path

__version__ = "0.1.0"


# ---------------------------------------------------------------- source checkouts
# An installed repflat carries repflat/analysis/ inside the package (pyproject maps the
# repository's top-level analysis/ folder there). A source checkout imported from its
# root (PYTHONPATH=checkout, e.g. a git worktree beside an editable install) has no such
# folder: `repflat.analysis` would then be found by the editable install's finder, which
# points at *another* checkout, pairing this checkout's repflat with someone else's
# analysis. This finder answers for the one name `repflat.analysis`, and only when this
# package has no analysis/ of its own and sits in a repository (pyproject.toml beside it)
# whose analysis/ folder is a package: then it is the sibling folder, as pyproject maps it.

_HERE = _Path(__file__).resolve().parent
_SIBLING = _HERE.parent / "analysis"


class _SourceCheckoutAnalysis:
    """Meta-path finder: `repflat.analysis` is this checkout's analysis/ folder."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        # PathFinder looks for the last part of the name ("analysis") in the given folder
        return _PathFinder.find_spec(fullname, [str(_SIBLING.parent)]) \
            if fullname == __name__ + ".analysis" else None


if (not (_HERE / "analysis").exists() and (_HERE.parent / "pyproject.toml").is_file()
        and (_SIBLING / "__init__.py").is_file()
        and not any(f is _SourceCheckoutAnalysis for f in _sys.meta_path)):
    _sys.meta_path.insert(0, _SourceCheckoutAnalysis)
