"""What a manifest lists, checked: its entries (one per saved array) and the rest.

`parse_manifest` turns features/manifest.json, as parsed JSON, into a `Manifest`: every
path confined to the run directory, every value of the type the format says, checksums
present for the labels and indices. The reader (`Features`) and the writer
(`FeatureWriter`, which refuses to extend a corrupt manifest) both go through it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repflat.errors import expected
from repflat.files import inside
from repflat.safenames import NAME_LIMIT, safe_label
from repflat.rundir.names import GRID, READABLE_FORMATS, SPLIT_KINDS

MAX_GRID = 4096
"""Most points per side of a probe grid a manifest may say."""
MAX_ENTRIES = 100_000
"""Arrays a manifest may list (3 splits × 300 epochs × 100 layers fit)."""
MAX_PATH = 1024
"""Characters of a path in a manifest (repflat's: under 250): resolving a path costs a
system call per component."""
MAX_AXES = 32
"""Axes of an array's shape (numpy's own limit is 64)."""


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


@dataclass(frozen=True)
class Discriminative:
    """A layer's discriminative summary (format 2; repflat.capture.discriminative): per
    class k, `factor[k]` (r, n_features) with G_k ≈ factor[k]ᵀ factor[k], G_k the class's
    average outer product of the Jacobian of the class-centred logits w.r.t. the layer;
    `trace[k]` = tr G_k exactly; `counts[k]` the rows of class k it averages."""

    factor: np.ndarray
    trace: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class Manifest:
    """A manifest's contents, checked (see `parse_manifest`)."""

    entries: list[Entry]
    label_paths: dict[str, Path]
    label_sha256: dict[str, str]
    splits: dict[str, dict]
    class_names: list[str] | None
    index_paths: dict[str, tuple[Path, str]]
    discriminative: list[tuple[Entry, list[float], list[int]]]


def in_run(root: Path, rel: str, where: str) -> Path:
    """`root / rel`, refusing any path that resolves outside the run directory."""
    return inside(root, rel, where, "the run directory")


def _numbers(value: object, where: str, n: int, kind=float) -> list:
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise expected(where, f"a list of {n} numbers", value if not isinstance(value, list) else f"{len(value)} items")
    if not all(np.isfinite(v) and v >= 0 for v in value):
        raise expected(where, "finite numbers >= 0", value)
    return [kind(v) for v in value]


def entry_from_json(item: object, where: str) -> Entry:
    if not isinstance(item, dict):
        raise expected(where, "an object", type(item).__name__)
    kinds = {"split": str, "epoch": int, "layer": str, "path": str, "shape": list,
             "dtype": str, "sha256": str}
    for key, kind in kinds.items():
        value = item.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise expected(f"{where}.{key}", kind.__name__, value)
    if len(item["path"]) > MAX_PATH:
        raise expected(f"{where}.path", f"a path of at most {MAX_PATH:,} characters",
                       f"{len(item['path']):,} characters")
    if len(item["shape"]) > MAX_AXES:
        raise expected(f"{where}.shape", f"at most {MAX_AXES} axes", f"{len(item['shape']):,} axes")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in item["shape"]):
        raise expected(f"{where}.shape", "a list of non-negative integers", item["shape"])
    # Names reach tables, figures and terminals (the array's path is its own field, so a
    # layer may hold '/', as TensorFlow's do); 100 characters, as a name repflat writes.
    safe_label(item["split"], f"{where}.split", NAME_LIMIT)
    safe_label(item["layer"], f"{where}.layer", NAME_LIMIT)
    return Entry(item["split"], item["epoch"], item["layer"], item["path"],
                 tuple(item["shape"]), item["dtype"], item["sha256"])


def _distinct(entries: list[Entry], where: str) -> list[Entry]:
    """`entries` without repeats; two different arrays for one (split, epoch, layer) are
    refused: which of them the features are is not for the reader to guess."""
    seen: dict[tuple, Entry] = {}
    for e in entries:
        key = (e.split, e.epoch, e.layer)
        if key in seen and seen[key] != e:
            raise expected(where, f"one array for {e.split}/{e.epoch}/{e.layer}",
                           f"{e.split}/{e.epoch}/{e.layer} twice: {seen[key].path} and {e.path}")
        seen.setdefault(key, e)
    return list(seen.values())


def _check_split_info(split: str, info: dict, where: str) -> None:
    """What the manifest says about a probe split (see repflat.capture): its kind, the
    layer its points live in and, for a grid, points per side."""
    if info.get("kind") not in SPLIT_KINDS:
        raise expected(f"{where}.kind", " or ".join(SPLIT_KINDS), info.get("kind"))
    safe_label(info.get("space"), f"{where}.space", NAME_LIMIT)  # a layer's name
    resolution = info.get("resolution")
    if info["kind"] == GRID and not (isinstance(resolution, int) and not isinstance(resolution, bool)
                                       and 2 <= resolution <= MAX_GRID):
        raise expected(f"{where}.resolution", f"an integer from 2 to {MAX_GRID}", resolution)


def _class_names(value: object, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 1_000_000:
        raise expected(f"{where}: class_names", "a list of names, one per class label", type(value).__name__)
    for i, name in enumerate(value):
        safe_label(name, f"{where}: class_names[{i}]")
    return value


def _own_files(entries: list[Entry], root: Path, path: Path) -> None:
    """Refuse two entries naming the same file (by path resolved, or by inode: a hard
    link): each entry is its own array, so the work of reading a directory is bounded by
    the bytes it holds (one 400 kB array listed under 1,500 names was 1,500 analyses).
    Each path is confined to the run directory too."""
    files: dict[object, Entry] = {}
    for e in entries:
        full = in_run(root, e.path, f"manifest entry {e.split}/{e.epoch}/{e.layer}: path")
        try:
            st = os.lstat(full)
            identity: object = (st.st_dev, st.st_ino)
        except OSError:  # missing: reading it says so
            identity = str(full)
        other = files.setdefault(identity, e)
        if other is not e:
            raise expected(f"manifest {path}: entries", "each entry its own array file",
                           f"{other.split}/{other.epoch}/{other.layer} and "
                           f"{e.split}/{e.epoch}/{e.layer} name the same file")


def parse_manifest(root: Path, data: object, path: Path) -> Manifest:
    """The manifest `data` (parsed JSON) of the run directory `root`, checked; a UserError
    naming what is wrong (`path`, the manifest's, says where)."""
    if not isinstance(data, dict):
        raise expected(f"manifest {path}", "a JSON object", type(data).__name__)
    if data.get("format") not in READABLE_FORMATS:
        raise expected(f"manifest {path}: format", " or ".join(map(str, READABLE_FORMATS)),
                       data.get("format"))
    entries, labels = data.get("entries"), data.get("labels", {})
    if not isinstance(entries, list):
        raise expected(f"manifest {path}: entries", "a list", entries)
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise expected(f"manifest {path}: labels", "a mapping of split to path", labels)
    for split in labels:
        safe_label(split, f"manifest {path}: labels: split", NAME_LIMIT)
    raw = data.get("discriminative", [])
    if not isinstance(raw, list):
        raise expected(f"manifest {path}: discriminative", "a list", type(raw).__name__)
    if len(entries) + len(raw) > MAX_ENTRIES:  # before any is checked: each costs a resolve
        raise expected(f"manifest {path}: entries", f"at most {MAX_ENTRIES:,} entries",
                       f"{len(entries) + len(raw):,}")
    entries = _distinct([entry_from_json(e, f"manifest entries[{i}]") for i, e in enumerate(entries)],
                        f"manifest {path}: entries")
    _own_files(entries, root, path)
    label_paths = {s: in_run(root, p, f"manifest labels.{s}") for s, p in labels.items()}
    label_sha256, splits = data.get("labels_sha256", {}), data.get("splits", {})
    for key, value in (("labels_sha256", label_sha256), ("splits", splits)):
        if not isinstance(value, dict) or (key == "splits" and not all(
                isinstance(v, dict) for v in value.values())):
            raise expected(f"manifest {path}: {key}", "a mapping by split", value)
    for split, info in splits.items():
        safe_label(split, f"manifest {path}: splits: split", NAME_LIMIT)
        _check_split_info(split, info, f"manifest {path}: splits.{split}")
    unsigned = sorted(s for s in label_paths if not isinstance(label_sha256.get(s), str))
    if unsigned:  # the labels decide every class statistic: they are checked like arrays
        raise expected(f"manifest {path}: labels_sha256", "a sha256 for the labels of every "
                       "split", f"none for {', '.join(unsigned)}")
    class_names = _class_names(data.get("class_names"), f"manifest {path}")
    indices, indices_sha256 = data.get("indices", {}), data.get("indices_sha256", {})
    if not isinstance(indices, dict) or not isinstance(indices_sha256, dict) or not all(
            isinstance(v, str) and isinstance(indices_sha256.get(s), str) for s, v in indices.items()):
        raise expected(f"manifest {path}: indices", "a mapping of split to path, each with "
                       "its sha256 in indices_sha256", indices)
    index_paths = {safe_label(s, f"manifest {path}: indices: split", NAME_LIMIT):
                   (in_run(root, p, f"manifest indices.{s}"), indices_sha256[s])
                   for s, p in indices.items()}
    discriminative, seen = [], {}
    for i, item in enumerate(raw):
        where = f"manifest discriminative[{i}]"
        entry = entry_from_json(item, where)
        in_run(root, entry.path, f"{where}: path")
        if len(entry.shape) != 3:
            raise expected(f"{where}.shape", "(n_classes, r, n_features)", list(entry.shape))
        K = entry.shape[0]
        summary = (entry, _numbers(item.get("trace"), f"{where}.trace", K),
                   _numbers(item.get("counts"), f"{where}.counts", K, int))
        key = (entry.split, entry.epoch, entry.layer)
        if seen.setdefault(key, summary) != summary:
            raise expected(where, f"one summary for {'/'.join(map(str, key))}",
                           f"two: {seen[key][0].path} and {entry.path}")
        if seen[key] is summary:
            discriminative.append(summary)
    return Manifest(entries, label_paths, label_sha256, splits, class_names, index_paths,
                    discriminative)
