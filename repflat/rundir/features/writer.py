"""The write side of `features/`: arrays go to disk first, then into the manifest."""
from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from repflat.files import read_json, write_text
from repflat.rundir.arrays import ArrayStream, save_npy
from repflat.rundir.features.entries import Entry
from repflat.rundir.features.reader import Features
from repflat.rundir.names import (FORMAT, LABELS, MANIFEST, discriminative_path, feature_path,
                                  indices_path, labels_path)


class FeatureWriter:
    """Write side of `features/`: arrays go to disk first, then into the manifest.

    Every change writes the manifest whole, so several writers in turn (epochs, splits,
    an interrupted extraction resumed, training and its capture) extend one manifest
    without losing each other's entries, and a killed writer leaves one that lists
    exactly the arrays complete so far. Only one process writes at a time (it holds the
    directory's lock; rank 0 under torchrun).

    Parameters
    ----------
    root : str or Path
        The run directory; a manifest already there is checked (a corrupt one is
        refused) and extended.
    held : bool, default True
        This process holds the directory's lock, so no one else changes the manifest: it
        is read once and kept in memory. False (the other ranks under torchrun, which
        write rows but never the manifest) reads it from disk at every look.
    """

    def __init__(self, root: str | Path, *, held: bool = True):
        self.root = Path(root)
        self.held = held
        self._manifest = None
        if (self.root / MANIFEST).exists() or (self.root / MANIFEST).is_symlink():
            self._manifest = Features(self.root).manifest  # refuse to extend a corrupt manifest

    @staticmethod
    def _empty() -> dict:
        return {"format": FORMAT, "entries": [], "labels": {}, "labels_sha256": {}, "splits": {}}

    @property
    def manifest(self) -> dict:
        """The manifest as this writer left it (as it is on disk now, when not `held`; an
        empty one if there is none yet). Not to be changed: see `_update`."""
        if not self.held:
            path = self.root / MANIFEST
            return self._empty() | read_json(path, "manifest") if path.exists() or path.is_symlink() \
                else self._empty()
        return self._empty() | (self._manifest or {})

    def _update(self, change) -> None:
        manifest = copy.deepcopy(self.manifest)
        change(manifest)
        manifest["format"] = FORMAT  # a format-1 manifest extended is a format-2 one
        write_text(self.root / MANIFEST, json.dumps(manifest, indent=1))
        self._manifest = manifest

    def epochs_seen(self, split: str) -> list[int]:
        """The epochs with features of `split` listed so far, ascending."""
        return sorted({e["epoch"] for e in self.manifest["entries"] if e["split"] == split})

    def has(self, split: str, epoch: int, layer: str) -> bool:
        return any((e["split"], e["epoch"], e["layer"]) == (split, epoch, layer)
                   for e in self.manifest["entries"])

    @staticmethod
    def _list(manifest: dict, entry: Entry) -> None:
        key = (entry.split, entry.epoch, entry.layer)
        manifest["entries"] = [e for e in manifest["entries"]
                               if (e["split"], e["epoch"], e["layer"]) != key] + [entry.as_json()]

    def add(self, split: str, epoch: int, layer: str, array: np.ndarray) -> Entry:
        path = feature_path(split, epoch, layer)
        digest = save_npy(self.root / path, array)
        entry = Entry(split, epoch, layer, path, tuple(array.shape), str(array.dtype), digest)
        self._update(lambda m: self._list(m, entry))
        return entry

    def commit_streams(self, split: str, epoch: int, streams: dict[str, ArrayStream], *,
                       indices: np.ndarray | None = None) -> None:
        """Finish complete streams (layers, and `LABELS` if present) and list them at once,
        with the split's dataset indices when given (rows not in the items' order)."""
        done = {layer: stream.finish() for layer, stream in streams.items()}
        index_digest = None if indices is None else save_npy(
            self.root / indices_path(split), np.asarray(indices, dtype=np.int64))

        def change(m: dict) -> None:
            if index_digest is not None:
                m.setdefault("indices", {})[split] = indices_path(split)
                m.setdefault("indices_sha256", {})[split] = index_digest
            for layer, digest in done.items():
                stream = streams[layer]
                if layer == LABELS:
                    m["labels"][split] = labels_path(split)
                    m["labels_sha256"][split] = digest
                else:
                    self._list(m, Entry(split, epoch, layer, feature_path(split, epoch, layer),
                                        tuple(stream.shape), str(stream.dtype), digest))
        self._update(change)

    def add_discriminative(self, split: str, epoch: int, layer: str, factor: np.ndarray,
                           trace: np.ndarray, counts: np.ndarray) -> None:
        """Save a layer's discriminative summary (see `Discriminative`) and list it."""
        path = discriminative_path(split, epoch, layer)
        digest = save_npy(self.root / path, np.ascontiguousarray(factor, dtype=np.float64))
        entry = Entry(split, epoch, layer, path, tuple(factor.shape), "float64", digest)
        item = entry.as_json() | {"trace": [float(t) for t in trace],
                                  "counts": [int(c) for c in counts]}

        def change(m: dict) -> None:
            key = (split, epoch, layer)
            m["discriminative"] = [d for d in m.get("discriminative", [])
                                   if (d["split"], d["epoch"], d["layer"]) != key] + [item]
        self._update(change)

    def add_labels(self, split: str, labels: np.ndarray) -> None:
        digest = save_npy(self.root / labels_path(split), labels.astype(np.int64))

        def change(m: dict) -> None:
            m["labels"][split] = labels_path(split)
            m["labels_sha256"][split] = digest
        self._update(change)

    def set_class_names(self, names: Sequence[str] | None) -> None:
        """Record the name of each class label (index = label); None records nothing, and
        names the manifest already holds are not written again (a rerun changes no file)."""
        if names is not None:
            names = [str(n) for n in names]
            if self.manifest.get("class_names") != names:
                self._update(lambda m: m.__setitem__("class_names", names))

    def describe_split(self, split: str, **info: object) -> None:
        """Record what a split is (e.g. a grid's space and resolution) for the readers."""
        self._update(lambda m: m["splits"].__setitem__(split, info))
