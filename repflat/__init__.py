"""repflat: what a regularizer does to the hidden representations of a network.

    import repflat
    fs = repflat.extract(model, ["layer4"], loader)      # features in memory (torch)
    fs.array("layer4"), fs.labels(), fs.class_names
    repflat.Features("runs/erm-seed0")                  # features on disk (numpy only)

Importing `repflat` never imports torch, so the analysis side works where torch is not
installed: `repflat.extract` and `repflat.train` live on the torch side and are loaded
the first time they are asked for (a module `__getattr__`, PEP 562); `Features` and
`MemoryFeatures` are torch-free and imported directly.
"""
__version__ = "0.1.0"

from repflat.rundir.features import Features, MemoryFeatures  # noqa: E402 - after the version

_LAZY = {  # top-level name -> the torch-side module defining it
    "extract": "repflat.capture.extract",
    "train": "repflat.training.loop",
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
