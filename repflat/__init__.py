"""repflat: what a regularizer does to the hidden representations of a network.

    import repflat
    repflat.layers(model, (3, 32, 32))                  # every layer name, with its shape
    mixup = repflat.Mixup(model, ["layer1", "layer2"])  # manifold mixup in your own loop
    logits, targets = mixup(x, y); loss = repflat.soft_cross_entropy(logits, targets)
    fs = repflat.extract(model, ["layer4"], test_loader, splits="test", arm="mixup", seed=0)
    fs.array("layer4"), fs.labels(), fs.class_names      # features in memory (torch)
    repflat.Features("runs/erm-seed0")                  # features on disk (numpy only)

Importing `repflat` never imports torch, so the analysis side works where torch is not
installed: `extract`, `layers`, `Mixup`, `soft_cross_entropy` and `train` live on the
torch side and are loaded the first time they are asked for (a module `__getattr__`, PEP
562); `Features` and `MemoryFeatures` are torch-free and imported directly.
"""
import sys as _sys
from importlib.machinery import PathFinder as _PathFinder
from pathlib import Path as _Path

from repflat.version import __version__


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

# ---------------------------------------------------------------- top-level names
from repflat.rundir.features import Features, MemoryFeatures  # noqa: E402 - after the version

_LAZY = {  # top-level name -> the torch-side module defining it
    "extract": "repflat.capture.extract",
    "layers": "repflat.capture.catalog",
    "Mixup": "repflat.mixing",
    "soft_cross_entropy": "repflat.mixing",
    "train": "repflat.training.loop",
    "model_proba": "repflat.capture.boundary",
}
__all__ = ["Features", "MemoryFeatures", *_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # asked once: later look-ups do not come here
        return value
    raise AttributeError(f"module 'repflat' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
