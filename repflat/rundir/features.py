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

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repflat.errors import UserError, expected
from repflat.rundir.names import (FORMAT, GRID, LABELS, MANIFEST, SPLIT_KINDS, feature_path,
                                  labels_path)
from repflat.rundir.files import (atomic_path, check_budget, create_new, inside, is_regular,
                           open_regular, read_json, sha256_file, write_text)

__all__ = ["ArrayStream", "Entry", "FeatureWriter", "Features", "FORMAT", "LABELS", "MANIFEST",
           "PARTIAL", "atomic_path", "feature_path", "labels_path", "npy_header", "save_npy",
           "sha256_file", "write_text"]



# ---------------------------------------------------------------- arrays

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
    return inside(root, rel, where, "the run directory")


def npy_header(path: Path, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of a .npy file, checked against the file's size.

    Read before anything else so a truncated file, an object array (which only pickle
    could load) or a corrupt header is named as such, never unpickled or allocated.
    """
    fd = open_regular(path, where)
    try:
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read(fh, max_header_size=1 << 16)
            offset = fh.tell()
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises many kinds
        # (ValueError, SyntaxError, tokenize.TokenError, ... found by tests/test_fuzz.py);
        # for a file on disk every one of them means the same: not a readable array.
        raise UserError(f"{where}: {path} is not a readable .npy array "
                        f"({type(err).__name__}: {err})") from None
    if dtype.hasobject:
        raise UserError(f"{where}: {path} holds Python objects, which only pickle can load; "
                        "refusing to (features are plain numbers)")
    if fortran:
        raise expected(where, "a C-ordered .npy array", f"{path} (Fortran order)")
    expected_size = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size != expected_size:
        what = "truncated" if size < expected_size else "longer than its header says"
        raise UserError(f"{where}: {path} is {what} ({size} bytes, its header needs "
                        f"{expected_size})")
    return tuple(shape), dtype, offset


def _load_npy(path: Path, sha256: str | None, where: str, mmap: bool) -> np.ndarray:
    """The array in `path` (a regular file, no link), its header checked first and, when
    loaded whole, its size against the memory budget, before its checksum is computed."""
    try:
        shape, dtype, _ = npy_header(path, where)
        if not mmap:
            check_budget(int(np.prod(shape, dtype=object)) * dtype.itemsize, where,
                         f"{path} (shape {shape}, {dtype})")
        if sha256 is not None and sha256_file(path) != sha256:
            raise UserError(f"{where}: checksum mismatch for {path} (the file changed after "
                            "it was written)")
        if not is_regular(path):  # swapped for a link since its header was read
            raise expected(where, "a regular file", str(path))
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{where}: {path} is not a readable .npy array ({err})") from None


MAX_GRID = 4096


def _check_split_info(split: str, info: dict, where: str) -> None:
    """What the manifest says about a probe split (see repflat.capture): its kind, the
    layer its points live in and, for a grid, points per side."""
    if info.get("kind") not in SPLIT_KINDS:
        raise expected(f"{where}.kind", " or ".join(SPLIT_KINDS), info.get("kind"))
    if not isinstance(info.get("space"), str):
        raise expected(f"{where}.space", "a layer name", info.get("space"))
    resolution = info.get("resolution")
    if info["kind"] == GRID and not (isinstance(resolution, int) and not isinstance(resolution, bool)
                                       and 2 <= resolution <= MAX_GRID):
        raise expected(f"{where}.resolution", f"an integer from 2 to {MAX_GRID}", resolution)


class Features:
    """Read side of `features/`: the manifest's entries and their arrays."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file() and not path.is_symlink():
            raise expected("run", f"a run directory with {MANIFEST}", str(self.root))
        inside(self.root, MANIFEST, "manifest", "the run directory")
        data = read_json(path, "manifest")
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
        for key, value in (("labels_sha256", self.label_sha256), ("splits", self.splits)):
            if not isinstance(value, dict) or (key == "splits" and not all(
                    isinstance(v, dict) for v in value.values())):
                raise expected(f"manifest {path}: {key}", "a mapping by split", value)
        for split, info in self.splits.items():
            _check_split_info(split, info, f"manifest {path}: splits.{split}")
        unsigned = sorted(s for s in self.label_paths if not isinstance(self.label_sha256.get(s), str))
        if unsigned:  # the labels decide every class statistic: they are checked like arrays
            raise expected(f"manifest {path}: labels_sha256", "a sha256 for the labels of every "
                           "split", f"none for {', '.join(unsigned)}")

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
        """The class of each row of `split`: integers >= 0, one per row of its features."""
        if split not in self.label_paths:
            raise expected("labels", f"one of {sorted(self.label_paths)}", split)
        where, path = f"labels {split}", self.label_paths[split]
        shape, _, _ = npy_header(path, where)
        rows = {e.shape[0] for e in self.select(split=split) if e.shape}
        if len(shape) != 1 or (rows and shape[0] not in rows):
            # before loading: a header may promise billions of rows in a file of holes
            raise expected(where, f"one label per row of the split's features ({', '.join(map(str, sorted(rows)))} rows)"
                           if rows else "a 1-D array of labels", f"shape {shape} in {path}")
        labels = _load_npy(path, self.label_sha256.get(split) if verify else None, where, mmap=False)
        if labels.dtype.kind in "iu" and len(labels) and labels.min() < 0:
            raise expected(where, "class labels >= 0", f"{int(labels.min())} in {path}")
        return labels


PARTIAL = ".partial"


class ArrayStream:
    """A .npy file preallocated at its full size under a `.partial` name, filled by rows.

    Rows go to disk with `os.pwrite` as they are computed, so memory does not grow with
    the number of rows (a memory map would: its dirty pages count as the process's
    resident memory), and several processes may fill disjoint rows of one file.
    `finish()` hashes the file and moves it to its final name.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...] | None = None,
                 dtype: np.dtype | str | None = None):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + PARTIAL)
        if shape is not None:  # create; an existing partial file (or a link) is replaced
            dtype = np.dtype(dtype)
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            with os.fdopen(create_new(self.partial), "wb") as fh:
                np.lib.format.write_array_header_1_0(fh, {
                    "descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                    "shape": tuple(shape)})
                header = fh.tell()
                fh.truncate(header + int(np.prod(shape)) * dtype.itemsize)  # sparse until written
        # reopen (resume, or another process) from the header; never through a link
        with os.fdopen(open_regular(self.partial, "partial array"), "rb") as fh:
            np.lib.format.read_magic(fh)
            self.shape, _, self.dtype = np.lib.format.read_array_header_1_0(fh)
            self.header = fh.tell()
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.fd = os.open(self.partial, os.O_WRONLY | os.O_NOFOLLOW)

    def write_rows(self, start: int, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:] or not 0 <= start <= self.shape[0] - len(rows):
            raise ValueError(f"rows {start}:{start + len(rows)} of shape {rows.shape} do not fit "
                             f"{self.partial} of shape {self.shape}")
        try:
            os.pwrite(self.fd, rows.tobytes(), self.header + start * self.row_bytes)
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(self.partial)) from err

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def finish(self) -> str:
        """Flush, hash and move the complete file into place; return its sha256."""
        os.fsync(self.fd)
        self.close()
        digest = sha256_file(self.partial)
        os.replace(self.partial, self.path)
        return digest


class FeatureWriter:
    """Write side of `features/`: arrays go to disk first, then into the manifest.

    Every change re-reads the manifest from disk and writes it back whole, so several
    writers in turn (epochs, splits, an interrupted extraction resumed, training and
    its capture) extend one manifest without losing each other's entries. Only one
    process writes at a time (rank 0 under torchrun).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if (self.root / MANIFEST).exists() or (self.root / MANIFEST).is_symlink():
            Features(self.root)  # refuse to extend a corrupt manifest

    @property
    def manifest(self) -> dict:
        """The manifest as it is on disk now (an empty one if there is none yet)."""
        empty = {"format": FORMAT, "entries": [], "labels": {}, "labels_sha256": {}, "splits": {}}
        path = self.root / MANIFEST
        return empty | read_json(path, "manifest") if path.exists() or path.is_symlink() else empty

    def _update(self, change) -> None:
        manifest = self.manifest
        change(manifest)
        write_text(self.root / MANIFEST, json.dumps(manifest, indent=1))

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

    def commit_streams(self, split: str, epoch: int, streams: dict[str, ArrayStream]) -> None:
        """Finish complete streams (layers, and `LABELS` if present) and list them at once."""
        done = {layer: stream.finish() for layer, stream in streams.items()}

        def change(m: dict) -> None:
            for layer, digest in done.items():
                stream = streams[layer]
                if layer == LABELS:
                    m["labels"][split] = labels_path(split)
                    m["labels_sha256"][split] = digest
                else:
                    self._list(m, Entry(split, epoch, layer, feature_path(split, epoch, layer),
                                        tuple(stream.shape), str(stream.dtype), digest))
        self._update(change)

    def add_labels(self, split: str, labels: np.ndarray) -> None:
        digest = save_npy(self.root / labels_path(split), labels.astype(np.int64))

        def change(m: dict) -> None:
            m["labels"][split] = labels_path(split)
            m["labels_sha256"][split] = digest
        self._update(change)

    def describe_split(self, split: str, **info: object) -> None:
        """Record what a split is (e.g. a grid's space and resolution) for the readers."""
        self._update(lambda m: m["splits"].__setitem__(split, info))
