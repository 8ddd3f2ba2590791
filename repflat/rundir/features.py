"""The run directory: the contract between training (writer) and analysis (reader).

Layout (format 1; the README documents it for people writing from other tools)::

    RUN/
      config.yaml             resolved run config (a valid `repflat train` input)
      run.json                {"format", "status": "running"|"complete", name, strategy, seed, ...}
      metrics.csv             one row per epoch: epoch, train_loss, test_accuracy, test_nll, seconds
      checkpoint.pt           final weights (torch; loaded with weights_only=True)
      features/
        manifest.json         {"format", "entries": [...], "labels": {split: path},
                               "labels_sha256": {split: hex}, "splits": {split: info},
                               "class_names": [name of label 0, ...] (optional)}
        <split>/labels.npy    integer class of each row
        <split>/epoch<E>/<layer>.npy   float array, shape (n_samples, n_features)

Every file is written to a temporary name and moved into place with `os.replace`, and
an array joins the manifest only after it is complete and hashed, so a reader never sees
a partial array under a listed name. Reading needs numpy alone; arrays are loaded with
`allow_pickle=False`, paths are confined to the run directory, checksums are verified.
"""
from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repflat.errors import UserError, expected, unknown
from repflat.rundir.arrays import ArrayStream, load_npy, npy_header, save_npy
from repflat.rundir.files import inside, read_json, write_text
from repflat.rundir.label import RunLabel, extracted_label, run_label
from repflat.rundir.names import (FORMAT, GRID, LABELS, MANIFEST, READABLE_FORMATS, SPLIT_KINDS,
                                  TRAIN, discriminative_path, feature_path, indices_path,
                                  labels_path)

FINAL = "final"
"""`epoch="final"`: the last epoch saved for the split and layer."""
MAX_GRID = 4096


# ---------------------------------------------------------------- entries

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


def _numbers(value: object, where: str, n: int, kind=float) -> list:
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise expected(where, f"a list of {n} numbers", value if not isinstance(value, list) else f"{len(value)} items")
    if not all(np.isfinite(v) and v >= 0 for v in value):
        raise expected(where, "finite numbers >= 0", value)
    return [kind(v) for v in value]


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


class FeatureSet:
    """What every set of saved features offers, on disk (`Features`) or in memory
    (`MemoryFeatures`): entries by split, epoch and layer, their arrays, the labels and
    class names, a readable repr and a frame of what is there.

        fs.array("fc1")                     # train split (or the only one), final epoch
        fs.array("fc1", split="test", epoch=0)
        fs.labels("train"), fs.class_names
        fs.indices("train")                 # the dataset index of each row
        fs.to_frame()                       # one row per saved array
        fs.labelled(arm="erm", seed=0)      # which run they come from, for the analysis

    `run` says which run the features come from (a `repflat.rundir.label.RunLabel`: arm,
    strategy, seed, swept values), or is None when nothing says.
    """

    entries: list[Entry]
    splits: dict[str, dict]
    class_names: list[str] | None
    run: RunLabel | None = None

    def labelled(self, arm: str | None = None, *, strategy: str | None = None,
                 seed: int | None = None, values: dict | None = None) -> "FeatureSet":
        """These features, saying which run they come from (nothing is copied).

        Parameters
        ----------
        arm : str, optional
            The arm (the name tables and comparisons group runs by), e.g. "erm".
        strategy : str, optional
            "none" (ERM), "input_mixup", "manifold_mixup", or a word of your own.
        seed : int, optional
            The run's seed: runs of two arms with the same seed are paired.
        values : dict, optional
            Swept values, e.g. {"alpha": 2.0}: columns of the effects table.

        Returns
        -------
        FeatureSet
            A shallow copy with `run` set, so `repflat.analysis.compute([...])` groups it
            by arm and pairs it by seed as it does repflat's runs.
        """
        out = copy.copy(self)
        out.run = run_label(arm, strategy, seed, values)
        return out

    def default_split(self) -> str:
        """The split `array`, `labels` and `indices` read when none is named.

        Returns
        -------
        str
            "train" when there is such a split, else the only split with labels (or with
            features) when there is one, else "train".
        """
        data = self.label_splits() or list(dict.fromkeys(e.split for e in self.entries))
        return TRAIN if TRAIN in data or len(data) != 1 else data[0]

    def select(self, *, split: str | None = None, epoch: int | None = None,
               layer: str | None = None) -> list[Entry]:
        """The saved arrays matching every filter given (None: any).

        Parameters
        ----------
        split : str, optional
            e.g. "train", "test", or a probe split such as "input_grid".
        epoch : int, optional
            The epoch the features were captured after.
        layer : str, optional
            The layer's name.

        Returns
        -------
        list of Entry
            In the manifest's order; empty if none matches.
        """
        return [e for e in self.entries
                if (split is None or e.split == split) and (epoch is None or e.epoch == epoch)
                and (layer is None or e.layer == layer)]

    def get(self, split: str, epoch: int, layer: str) -> Entry:
        """The saved array of `layer` for `split` at `epoch`.

        Parameters
        ----------
        split : str
            The split, e.g. "train".
        epoch : int
            The epoch (an integer: "final" is `array`'s).
        layer : str
            The layer's name.

        Returns
        -------
        Entry
            Its split, epoch, layer, path, shape, dtype and sha256 (the last listed if
            the manifest lists it twice).

        Raises
        ------
        repflat.errors.UserError
            If there is none, listing what is saved.
        """
        found = self.select(split=split, epoch=epoch, layer=layer)
        if not found:
            have = sorted({f"{e.split}/{e.epoch}/{e.layer}" for e in self.entries})
            raise UserError(f"features: no array for split {split!r}, epoch {epoch}, layer "
                            f"{layer!r} in {self.where}; saved: {', '.join(have[:20]) or 'none'}")
        return found[-1]

    def epochs(self, split: str | None = None) -> list[int]:
        """The epochs with saved features.

        Parameters
        ----------
        split : str, optional
            Only this split's epochs (default: every split's).

        Returns
        -------
        list of int
            Ascending, each once; empty if nothing is saved.
        """
        return sorted({e.epoch for e in self.select(split=split)})

    def final_epoch(self, split: str = TRAIN, layer: str | None = None) -> int:
        """The last epoch saved for `split` (and `layer`).

        Parameters
        ----------
        split : str, default "train"
            The split.
        layer : str, optional
            Only the epochs saved for this layer (default: any layer).

        Returns
        -------
        int
            The largest epoch with features of `split` (and `layer`).

        Raises
        ------
        repflat.errors.UserError
            If the split is unknown, or nothing is saved for the layer in it, listing the
            valid names.
        """
        epochs = sorted({e.epoch for e in self.select(split=split, layer=layer)})
        if not epochs:
            self._unknown(split, layer)
        return epochs[-1]

    def discriminative(self, layer: str, *, split: str = TRAIN, epoch: int = 0) -> Discriminative | None:
        """The discriminative summary of `layer` at (`split`, `epoch`).

        Parameters
        ----------
        layer : str
            The layer's name.
        split : str, default "train"
            The split.
        epoch : int, default 0
            The epoch it was captured after.

        Returns
        -------
        Discriminative or None
            Per class, the factor of the average Jacobian outer product of the centred
            logits, its trace and the class counts (checked against its checksum on
            disk); None where none was saved (format 1, or not captured).
        """
        return None

    def layers(self, split: str | None = None) -> list[str]:
        """The layers with saved features.

        Parameters
        ----------
        split : str, optional
            Only this split's layers (default: every split's).

        Returns
        -------
        list of str
            In the order they were first saved, each once.
        """
        return list(dict.fromkeys(e.layer for e in self.select(split=split)))

    def label_splits(self) -> list[str]:
        """The splits with labels (data splits; probe splits have none).

        Returns
        -------
        list of str
            Sorted, e.g. ["test", "train"].
        """
        raise NotImplementedError

    def _unknown(self, split: str, layer: str | None) -> None:
        splits = list(dict.fromkeys(e.split for e in self.entries))
        if split not in splits:
            raise unknown("split", split, splits)
        raise unknown("layer", str(layer), self.layers(split))

    def array(self, layer: str, *, split: str | None = None, epoch: int | str = FINAL,
              mmap: bool = False) -> np.ndarray:
        """The features of `layer`, shape (n_samples, n_features), at `epoch` of `split`.

        `epoch="final"` is the last saved; rows line up with `labels(split)`.

        Parameters
        ----------
        layer : str
            The layer's name, as `layers()` lists it.
        split : str, optional
            The split; default "train", or the only split there is (`default_split`).
        epoch : int or "final", default "final"
            The epoch the features were captured after; "final" is the last one saved
            for this split and layer. Any other string is read as an integer.
        mmap : bool, default False
            Map the file read-only instead of reading it into memory (`Features`; a
            `MemoryFeatures` array is in memory already).

        Returns
        -------
        ndarray, shape (n_samples, n_features)
            The features as saved (float32 or float16 when captured by repflat), checked
            against the manifest's checksum, shape and dtype when read from disk.

        Raises
        ------
        repflat.errors.UserError
            If the split, layer or epoch has no saved array (listing what is saved), or
            the file fails its checks.
        """
        split = split or self.default_split()
        if not self.select(split=split, layer=layer):
            self._unknown(split, layer)
        if epoch == FINAL:
            epoch = self.final_epoch(split, layer)
        elif isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
            raise expected("epoch", f'an epoch number or "{FINAL}"', epoch)
        return self.load(self.get(split, int(epoch), layer), mmap=mmap)

    def load(self, entry: Entry, *, verify: bool = True, mmap: bool = False) -> np.ndarray:
        """The array of one entry (from `select` or `get`).

        Parameters
        ----------
        entry : Entry
            A saved array of this feature set.
        verify : bool, default True
            Check the file's sha256 against the manifest (on disk).
        mmap : bool, default False
            Map the file read-only instead of reading it into memory (on disk).

        Returns
        -------
        ndarray
            The array, shape `entry.shape`.
        """
        raise NotImplementedError

    def labels(self, split: str | None = None, *, verify: bool = True) -> np.ndarray:
        """The class of each row of `split`.

        Parameters
        ----------
        split : str, optional
            A split with labels (see `label_splits`); default "train", or the only one.
        verify : bool, default True
            Check the labels file's sha256 against the manifest (on disk).

        Returns
        -------
        ndarray of int, shape (n_samples,)
            One label per row of the split's features.

        Raises
        ------
        repflat.errors.UserError
            If the split has no labels.
        """
        raise NotImplementedError

    def indices(self, split: str | None = None) -> np.ndarray:
        """The dataset index of each row of `split`.

        Where a DataLoader's sampler put the item: row i is item `indices(split)[i]` of
        its data set.

        Parameters
        ----------
        split : str, optional
            A split with labels; default "train", or the only one.

        Returns
        -------
        ndarray of int64, shape (n_samples,)
            As saved; `0, 1, 2, …` when the rows are the items in order (nothing saved).
        """
        split = split or self.default_split()
        saved = self._indices(split)
        return saved if saved is not None else np.arange(len(self.labels(split)), dtype=np.int64)

    def _indices(self, split: str) -> np.ndarray | None:
        return None

    def class_name(self, label: int) -> str:
        """The name of class `label` (its number as text when no names are known).

        Parameters
        ----------
        label : int
            A class label (index into `class_names`).

        Returns
        -------
        str
            `class_names[label]`, or `str(label)` when there are no names or the label
            is outside them.
        """
        names = self.class_names
        return names[label] if names is not None and 0 <= label < len(names) else str(label)

    def to_frame(self):
        """One row per saved array: split, epoch, layer, n_samples, n_features, dtype.

        Returns
        -------
        pandas.DataFrame
            Columns split, epoch, layer, n_samples, n_features (the product of the
            dimensions after the first) and dtype, in the manifest's order.
        """
        import pandas as pd

        return pd.DataFrame([{"split": e.split, "epoch": e.epoch, "layer": e.layer,
                              "n_samples": e.shape[0] if e.shape else 0,
                              "n_features": int(np.prod(e.shape[1:], dtype=np.int64)) if e.shape else 0,
                              "dtype": e.dtype} for e in self.entries],
                            columns=["split", "epoch", "layer", "n_samples", "n_features", "dtype"])

    @property
    def where(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.where})"]
        for split in dict.fromkeys(e.split for e in self.entries):
            epochs = self.epochs(split)
            shapes = {e.layer: e for e in self.select(split=split, epoch=epochs[-1])}
            layers = ", ".join(f"{l!r} ({' × '.join(map(str, e.shape[1:])) or 1} {e.dtype})"
                               for l, e in list(shapes.items())[:8])
            more = f", … ({len(shapes)} layers)" if len(shapes) > 8 else ""
            n = next(iter(shapes.values())).shape[0] if shapes else 0
            span = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}..{epochs[-1]} ({len(epochs)})"
            lines.append(f"  {split}: {n} samples, {span}: {layers}{more}")
        if self.class_names is not None:
            shown = ", ".join(self.class_names[:10]) + (", …" if len(self.class_names) > 10 else "")
            lines.append(f"  classes ({len(self.class_names)}): {shown}")
        if self.run is not None:
            said = {"arm": self.run.arm, "strategy": self.run.strategy, "seed": self.run.seed,
                    **self.run.values}
            lines.append("  run: " + ", ".join(f"{k} {v}" for k, v in said.items()
                                               if v is not None and v != "unknown"))
        return "\n".join(lines)


def _class_names(value: object, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 1_000_000:
        raise expected(f"{where}: class_names", "a list of names, one per class label", type(value).__name__)
    return value


class Features(FeatureSet):
    """Read side of a run directory's `features/`: the manifest's entries and their arrays.

    Needs numpy alone: arrays are loaded with `allow_pickle=False`, paths are confined to
    the run directory and checksums verified (see the module docstring).

    Parameters
    ----------
    root : str or Path
        A run directory, or any directory with `features/manifest.json` (what
        `repflat train` and `repflat extract --out` write).

    Raises
    ------
    repflat.errors.UserError
        If there is no manifest, or it is not valid JSON of format 1, lists a path
        outside the directory, or lacks the labels' checksums.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.run = extracted_label(self.root)
        path = self.root / MANIFEST
        if not path.is_file() and not path.is_symlink():
            raise expected("run", f"a run directory with {MANIFEST}", str(self.root))
        inside(self.root, MANIFEST, "manifest", "the run directory")
        data = read_json(path, "manifest")
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
        self.class_names = _class_names(data.get("class_names"), f"manifest {path}")
        indices, indices_sha256 = data.get("indices", {}), data.get("indices_sha256", {})
        if not isinstance(indices, dict) or not isinstance(indices_sha256, dict) or not all(
                isinstance(v, str) and isinstance(indices_sha256.get(s), str) for s, v in indices.items()):
            raise expected(f"manifest {path}: indices", "a mapping of split to path, each with "
                           "its sha256 in indices_sha256", indices)
        self.index_paths = {s: (_inside(self.root, p, f"manifest indices.{s}"), indices_sha256[s])
                            for s, p in indices.items()}
        raw = data.get("discriminative", [])
        if not isinstance(raw, list):
            raise expected(f"manifest {path}: discriminative", "a list", type(raw).__name__)
        self.discriminative_entries: list[tuple[Entry, list[float], list[int]]] = []
        for i, item in enumerate(raw):
            where = f"manifest discriminative[{i}]"
            entry = _entry_from_json(item, where)
            _inside(self.root, entry.path, f"{where}: path")
            if len(entry.shape) != 3:
                raise expected(f"{where}.shape", "(n_classes, r, n_features)", list(entry.shape))
            K = entry.shape[0]
            self.discriminative_entries.append(
                (entry, _numbers(item.get("trace"), f"{where}.trace", K),
                 _numbers(item.get("counts"), f"{where}.counts", K, int)))

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
        """The array of `entry`, checked against its manifest checksum, shape and dtype.

        Parameters
        ----------
        entry : Entry
            A saved array of this run (from `select` or `get`).
        verify : bool, default True
            Check the file's sha256 against the manifest.
        mmap : bool, default False
            Map the file read-only (`np.memmap`) instead of reading it whole; a file read
            whole is checked against the memory budget first.

        Returns
        -------
        ndarray
            Shape `entry.shape`, dtype `entry.dtype`.

        Raises
        ------
        repflat.errors.UserError
            If the file is missing, not a regular .npy file, outside the run directory,
            changed since written (checksum), of another shape or dtype than the
            manifest says, or larger than the memory budget.
        """
        where = f"features {entry.split}/{entry.epoch}/{entry.layer}"
        path = _inside(self.root, entry.path, f"{where}: path")
        array = load_npy(path, entry.sha256 if verify else None, where, mmap)
        if array.shape != entry.shape or str(array.dtype) != entry.dtype:
            raise expected(where, f"shape {entry.shape} {entry.dtype} as the manifest says",
                           f"{array.shape} {array.dtype}")
        return array

    def labels(self, split: str | None = None, *, verify: bool = True) -> np.ndarray:
        """The class of each row of `split`: integers >= 0, one per row of its features.

        Parameters
        ----------
        split : str, optional
            A split with labels (see `label_splits`); default "train", or the only one.
        verify : bool, default True
            Check the labels file's sha256 against the manifest.

        Returns
        -------
        ndarray of int, shape (n_samples,)
            One label per row of the split's features.

        Raises
        ------
        repflat.errors.UserError
            If the split has no labels, or the file is not one label per row, fails its
            checksum, or holds a negative label.
        """
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
        labels = load_npy(path, self.label_sha256.get(split) if verify else None, where, mmap=False)
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
        return _checked_indices(load_npy(path, digest, where, mmap=False), n, where)


def _checked_indices(indices: np.ndarray, n: int, where: str) -> np.ndarray:
    if indices.shape != (n,) or indices.dtype.kind not in "iu" or (n and indices.min() < 0):
        raise expected(where, f"one dataset index >= 0 per row ({n} rows)",
                       f"shape {indices.shape} {indices.dtype}")
    return indices.astype(np.int64, copy=False)


class MemoryFeatures(FeatureSet):
    """Features held in memory, as `repflat.extract(..., out=None)` returns them.

    The same API as `Features` without a run directory. `arrays` maps (split, epoch,
    layer) to an array (n_samples, n_features); `labels` maps each split to its class
    labels.

    Nothing is checked here: rows are expected to line up with the labels of their split.

    Parameters
    ----------
    arrays : dict {(str, int, str): array-like}
        (split, epoch, layer) to that layer's features, shape (n_samples, n_features);
        each is kept as `np.asarray` of it.
    labels : dict {str: array-like of int}
        Each split's class labels, shape (n_samples,).
    class_names : list of str, optional
        The name of each class, index = label.
    splits : dict {str: dict}, optional
        What probe splits are (kind, space, resolution), as a manifest's `splits`.
    name : str, default "in memory"
        What the feature set is called in its repr and in error messages.
    discriminative : dict {(str, int, str): Discriminative}, optional
        (split, epoch, layer) to the layer's discriminative summary, for Corollary 1's
        measures (`repflat.analysis.discriminative`).
    indices : dict {str: array-like of int}, optional
        Each split's dataset index of every row (default: row i is item i).
    run : RunLabel, optional
        Which run the features come from (arm, strategy, seed, swept values); see
        `labelled`.
    """

    def __init__(self, arrays: dict[tuple[str, int, str], np.ndarray],
                 labels: dict[str, np.ndarray], class_names: list[str] | None = None,
                 splits: dict[str, dict] | None = None, name: str = "in memory",
                 discriminative: dict[tuple[str, int, str], Discriminative] | None = None,
                 indices: dict[str, np.ndarray] | None = None, run: RunLabel | None = None):
        self._indices_given = {s: _checked_indices(np.asarray(v), len(np.asarray(v)), f"indices[{s!r}]")
                               for s, v in (indices or {}).items()}
        self.run = run
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self._discriminative = dict(discriminative or {})
        self._labels = {s: np.asarray(v) for s, v in labels.items()}
        self.class_names = list(class_names) if class_names is not None else None
        self.splits = dict(splits or {})
        self.name = name
        self.entries = [Entry(s, e, l, "", tuple(a.shape), str(a.dtype), "")
                        for (s, e, l), a in self.arrays.items()]

    @property
    def where(self) -> str:
        return self.name

    def discriminative(self, layer: str, *, split: str = TRAIN, epoch: int = 0) -> Discriminative | None:
        return self._discriminative.get((split, epoch, layer))

    def label_splits(self) -> list[str]:
        """The splits with labels.

        Returns
        -------
        list of str
            The keys of `labels`, sorted.
        """
        return sorted(self._labels)

    def _indices(self, split: str) -> np.ndarray | None:
        return self._indices_given.get(split)

    def load(self, entry: Entry, *, verify: bool = True, mmap: bool = False) -> np.ndarray:
        """The array of `entry`, as held (not copied).

        Parameters
        ----------
        entry : Entry
            One of `entries` (from `select` or `get`).
        verify, mmap : bool
            Accepted for `Features`' signature; nothing to verify or map in memory.

        Returns
        -------
        ndarray
            The array given for (split, epoch, layer).
        """
        return self.arrays[entry.split, entry.epoch, entry.layer]

    def labels(self, split: str | None = None, *, verify: bool = True) -> np.ndarray:
        """The class of each row of `split`, as given.

        Parameters
        ----------
        split : str, optional
            A split with labels (see `label_splits`); default "train", or the only one.
        verify : bool, default True
            Accepted for `Features`' signature; nothing to verify in memory.

        Returns
        -------
        ndarray, shape (n_samples,)
            The labels given for the split.

        Raises
        ------
        repflat.errors.UserError
            If the split has no labels.
        """
        split = split or self.default_split()
        if split not in self._labels:
            raise expected("labels", f"one of {sorted(self._labels)}", split)
        return self._labels[split]

    def to_dict(self, split: str | None = None, epoch: int | str = FINAL) -> dict[str, np.ndarray]:
        """{layer: array} of `split` at `epoch`, as torchvision's feature extractor returns.

        Parameters
        ----------
        split : str, optional
            The split; default "train", or the only one.
        epoch : int or "final", default "final"
            As `array`'s.

        Returns
        -------
        dict {str: ndarray of shape (n_samples, n_features)}
            Every layer of the split, in the order they were first saved.

        Raises
        ------
        repflat.errors.UserError
            As `array`: a layer with no array at that epoch.
        """
        split = split or self.default_split()
        if not self.layers(split):
            self._unknown(split, None)
        return {layer: self.array(layer, split=split, epoch=epoch) for layer in self.layers(split)}


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
        manifest["format"] = FORMAT  # a format-1 manifest extended is a format-2 one
        write_text(self.root / MANIFEST, json.dumps(manifest, indent=1))

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
