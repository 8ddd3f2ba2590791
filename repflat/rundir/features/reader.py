"""A run directory's features on disk: the manifest's entries and their arrays (`Features`)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from repflat.errors import expected
from repflat.files import JSON_LIMIT, inside, parse_json, read_text
from repflat.rundir.arrays import load_npy, npy_header
from repflat.rundir.features.entries import Discriminative, Entry, in_run, parse_manifest
from repflat.rundir.features.featureset import FeatureSet, checked_indices
from repflat.rundir.label import extracted_label
from repflat.rundir.names import MANIFEST, TRAIN


def read_manifest(root: Path) -> tuple[dict, str]:
    """features/manifest.json of `root` as parsed JSON, and the sha256 of its bytes; a link,
    a special file or a path leading outside `root` refused."""
    path = root / MANIFEST
    inside(root, MANIFEST, "manifest", "the run directory")
    text = read_text(path, "manifest", JSON_LIMIT)
    return parse_json(text, "manifest", path), hashlib.sha256(text.encode("utf-8")).hexdigest()


class Features(FeatureSet):
    """Read side of a run directory's `features/`: the manifest's entries and their arrays.

    Needs numpy alone: arrays are loaded with `allow_pickle=False`, paths are confined to
    the run directory and checksums verified (see `repflat.rundir.features`). The
    manifest is read once, when the directory is opened (`manifest_sha256`: its digest).

    Parameters
    ----------
    root : str or Path
        A run directory, or any directory with `features/manifest.json` (what
        `repflat train` and `repflat extract --out` write).

    Raises
    ------
    repflat.errors.UserError
        If there is no manifest, or it is not valid JSON of format 1 or 2, lists a path
        outside the directory, or lacks the labels' checksums.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.run = extracted_label(self.root)
        path = self.root / MANIFEST
        if not path.is_file() and not path.is_symlink():
            raise expected("run", f"a run directory with {MANIFEST}", str(self.root))
        self.manifest, self.manifest_sha256 = read_manifest(self.root)
        m = parse_manifest(self.root, self.manifest, path)
        self.entries, self.label_paths, self.label_sha256 = m.entries, m.label_paths, m.label_sha256
        self.splits, self.class_names, self.index_paths = m.splits, m.class_names, m.index_paths
        self.discriminative_entries = m.discriminative
        self._verified: dict[tuple[str, str], tuple[int, ...]] = {}

    def _load(self, path: Path, digest: str | None, where: str, mmap: bool) -> np.ndarray:
        """`load_npy`, hashing a file once per Features: a file that matched its checksum
        here and whose size, mtime, inode and device are unchanged since is not hashed
        again (the analysis reads an array for its spectra and again for the similarity
        between runs; benchmarks/counters.py counts the hashes). A file replaced or
        rewritten in between changes its stat and is hashed again."""
        key = (str(path), digest or "")
        try:
            stat = os.stat(path)
        except OSError:  # missing or unreadable: load_npy says so as a user error
            return load_npy(path, digest, where, mmap)
        signature = (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev)
        known = digest is not None and self._verified.get(key) == signature
        array = load_npy(path, None if known else digest, where, mmap)
        if digest is not None:
            self._verified[key] = signature
        return array

    @property
    def where(self) -> str:
        return str(self.root)

    def discriminative(self, layer: str, *, split: str = TRAIN, epoch: int = 0) -> Discriminative | None:
        found = [d for d in self.discriminative_entries
                 if (d[0].split, d[0].epoch, d[0].layer) == (split, epoch, layer)]
        if not found:
            return None
        entry, trace, counts = found[-1]
        factor = self.load(entry)
        if factor.dtype.kind != "f" or not np.isfinite(factor).all():
            raise expected(f"discriminative {split}/{epoch}/{layer}", "finite floats", str(factor.dtype))
        return Discriminative(factor.astype(np.float64, copy=False), np.asarray(trace), np.asarray(counts))

    def label_splits(self) -> list[str]:
        return sorted(self.label_paths)

    def load(self, entry: Entry, *, verify: bool = True, mmap: bool = False) -> np.ndarray:
        where = f"features {entry.split}/{entry.epoch}/{entry.layer}"
        path = in_run(self.root, entry.path, f"{where}: path")
        array = self._load(path, entry.sha256 if verify else None, where, mmap)
        if array.shape != entry.shape or str(array.dtype) != entry.dtype:
            raise expected(where, f"shape {entry.shape} {entry.dtype} as the manifest says",
                           f"{array.shape} {array.dtype}")
        return array

    def labels(self, split: str | None = None, *, verify: bool = True) -> np.ndarray:
        split = split or self.default_split()
        if split not in self.label_paths:
            raise expected("labels", f"one of {sorted(self.label_paths)}", split)
        where, path = f"labels {split}", self.label_paths[split]
        shape, _, _ = npy_header(path, where)
        rows = {e.shape[0] for e in self.select(split=split) if e.shape}
        if len(shape) != 1 or (rows and shape[0] not in rows):
            # before loading: a header may promise billions of rows in a file of holes
            raise expected(where, f"one label per row of the split's features ({', '.join(map(str, sorted(rows)))} rows)"
                           if rows else "a 1-D array of labels", f"shape {shape} in {path}")
        labels = self._load(path, self.label_sha256.get(split) if verify else None, where, mmap=False)
        if labels.dtype.kind in "iu" and len(labels) and labels.min() < 0:
            raise expected(where, "class labels >= 0", f"{int(labels.min())} in {path}")
        return labels

    def _indices(self, split: str) -> np.ndarray | None:
        if split not in self.index_paths:
            return None
        path, digest = self.index_paths[split]
        where = f"indices {split}"
        if npy_header(path, where)[0] != ((n := len(self.labels(split))),):
            raise expected(where, f"one dataset index per row ({n} rows)", str(path))
        return checked_indices(load_npy(path, digest, where, mmap=False), n, where)
