"""The run directory: the contract between training (writer) and analysis (reader).

Layout (format 1; the README documents it for people writing from other tools)::

    RUN/
      config.yaml             resolved run config (a valid `repflat train` input)
      run.json                {"format", "status": "running"|"complete", name, strategy, seed, ...}
      metrics.csv             one row per epoch: epoch, train_loss, test_accuracy, test_nll, seconds
      checkpoint.pt           final weights (torch; loaded with weights_only=True)
      features/
        manifest.json         {"format", "entries": [...], "labels": {split: path},
                               "labels_sha256": {split: hex}, "splits": {split: info}}
        <split>/labels.npy    integer class of each row
        <split>/epoch<E>/<layer>.npy   float array, shape (n_samples, n_features)

Every file is written to a temporary name and moved into place with `os.replace`, and
an array joins the manifest only after it is complete and hashed, so a reader never sees
a partial array under a listed name. Reading needs numpy alone; arrays are loaded with
`allow_pickle=False`, paths are confined to the run directory, checksums are verified.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repflat.errors import UserError, expected

FORMAT = 1
MANIFEST = "features/manifest.json"


# ---------------------------------------------------------------- atomic files

@contextlib.contextmanager
def atomic_path(path: str | Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; on success it replaces `path` in one step.

    The rename makes the write atomic against a killed process. `durable=True` also
    fsyncs the data first, which power loss needs too; it costs milliseconds, so it is
    kept for files that are expensive to lose (checkpoints, feature arrays).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def save_npy(path: str | Path, array: np.ndarray) -> str:
    """Save `array` atomically as .npy and return the file's sha256."""
    with atomic_path(path, durable=True) as tmp:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
        digest = sha256_file(tmp)
    return digest


# ---------------------------------------------------------------- manifest

@dataclass(frozen=True)
class Entry:
    """One saved array: the features of `layer` for `split` after `epoch` epochs."""

    split: str
    epoch: int
    layer: str
    path: str
    shape: tuple[int, ...]
    dtype: str
    sha256: str

    def as_json(self) -> dict:
        return {**self.__dict__, "shape": list(self.shape)}


def _entry_from_json(item: object, where: str) -> Entry:
    if not isinstance(item, dict):
        raise expected(where, "an object", type(item).__name__)
    kinds = {"split": str, "epoch": int, "layer": str, "path": str, "shape": list,
             "dtype": str, "sha256": str}
    for key, kind in kinds.items():
        value = item.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise expected(f"{where}.{key}", kind.__name__, value)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in item["shape"]):
        raise expected(f"{where}.shape", "a list of non-negative integers", item["shape"])
    return Entry(item["split"], item["epoch"], item["layer"], item["path"],
                 tuple(item["shape"]), item["dtype"], item["sha256"])


def _inside(root: Path, rel: str, where: str) -> Path:
    """`root / rel`, refusing any path that resolves outside the run directory."""
    if not rel or os.path.isabs(rel):
        raise expected(where, "a path relative to the run directory", rel)
    full = (root / rel).resolve()
    if not full.is_relative_to(root.resolve()):
        raise expected(where, "a path inside the run directory", rel)
    return full


def _load_npy(path: Path, sha256: str | None, where: str, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise expected(where, "an existing .npy file", str(path))
    if sha256 is not None and sha256_file(path) != sha256:
        raise UserError(f"{where}: checksum mismatch for {path} (the file changed after it was written)")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{where}: {path} is not a readable .npy array ({err})") from None


class Features:
    """Read side of `features/`: the manifest's entries and their arrays."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise expected("run", f"a run directory with {MANIFEST}", str(self.root))
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"manifest: {path} is not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise expected(f"manifest {path}", "a JSON object", type(data).__name__)
        if data.get("format") != FORMAT:
            raise expected(f"manifest {path}: format", FORMAT, data.get("format"))
        entries, labels = data.get("entries"), data.get("labels", {})
        if not isinstance(entries, list):
            raise expected(f"manifest {path}: entries", "a list", entries)
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise expected(f"manifest {path}: labels", "a mapping of split to path", labels)
        self.entries = [_entry_from_json(e, f"manifest entries[{i}]") for i, e in enumerate(entries)]
        for e in self.entries:
            _inside(self.root, e.path, f"manifest entry {e.split}/{e.epoch}/{e.layer}: path")
        self.label_paths = {s: _inside(self.root, p, f"manifest labels.{s}") for s, p in labels.items()}
        self.label_sha256 = data.get("labels_sha256", {})
        self.splits: dict[str, dict] = data.get("splits", {})

    def select(self, *, split: str | None = None, epoch: int | None = None,
               layer: str | None = None) -> list[Entry]:
        return [e for e in self.entries
                if (split is None or e.split == split) and (epoch is None or e.epoch == epoch)
                and (layer is None or e.layer == layer)]

    def get(self, split: str, epoch: int, layer: str) -> Entry:
        found = self.select(split=split, epoch=epoch, layer=layer)
        if not found:
            have = sorted({f"{e.split}/{e.epoch}/{e.layer}" for e in self.entries})
            raise UserError(f"features: no array for split {split!r}, epoch {epoch}, layer "
                            f"{layer!r} in {self.root}; saved: {', '.join(have[:20]) or 'none'}")
        return found[-1]

    def epochs(self, split: str | None = None) -> list[int]:
        return sorted({e.epoch for e in self.select(split=split)})

    def layers(self, split: str | None = None) -> list[str]:
        return list(dict.fromkeys(e.layer for e in self.select(split=split)))

    def load(self, entry: Entry, *, verify: bool = True, mmap: bool = False) -> np.ndarray:
        """The array of `entry`, checked against its manifest checksum, shape and dtype."""
        where = f"features {entry.split}/{entry.epoch}/{entry.layer}"
        path = _inside(self.root, entry.path, f"{where}: path")
        array = _load_npy(path, entry.sha256 if verify else None, where, mmap)
        if array.shape != entry.shape or str(array.dtype) != entry.dtype:
            raise expected(where, f"shape {entry.shape} {entry.dtype} as the manifest says",
                           f"{array.shape} {array.dtype}")
        return array

    def labels(self, split: str, *, verify: bool = True) -> np.ndarray:
        if split not in self.label_paths:
            raise expected("labels", f"one of {sorted(self.label_paths)}", split)
        sha = self.label_sha256.get(split) if verify else None
        return _load_npy(self.label_paths[split], sha, f"labels {split}", mmap=False)


class FeatureWriter:
    """Write side of `features/`: arrays go to disk first, then into the manifest."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest = {"format": FORMAT, "entries": [], "labels": {}, "labels_sha256": {},
                         "splits": {}}

    def _commit(self) -> None:
        write_text(self.root / MANIFEST, json.dumps(self.manifest, indent=1))

    def add(self, split: str, epoch: int, layer: str, array: np.ndarray) -> Entry:
        rel = f"features/{split}/epoch{epoch:04d}/{layer.replace(os.sep, '_')}.npy"
        digest = save_npy(self.root / rel, array)
        entry = Entry(split, epoch, layer, rel, tuple(array.shape), str(array.dtype), digest)
        self.manifest["entries"] = [
            e for e in self.manifest["entries"]
            if (e["split"], e["epoch"], e["layer"]) != (split, epoch, layer)] + [entry.as_json()]
        self._commit()
        return entry

    def add_labels(self, split: str, labels: np.ndarray) -> None:
        rel = f"features/{split}/labels.npy"
        self.manifest["labels_sha256"][split] = save_npy(self.root / rel, labels.astype(np.int64))
        self.manifest["labels"][split] = rel
        self._commit()

    def describe_split(self, split: str, **info: object) -> None:
        """Record what a split is (e.g. a grid's space and resolution) for the readers."""
        self.manifest["splits"][split] = info
        self._commit()
