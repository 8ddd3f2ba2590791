"""What every set of saved features offers, on disk or in memory (`FeatureSet`)."""
from __future__ import annotations

import abc
import copy

import numpy as np

from repflat.errors import UserError, expected, unknown
from repflat.rundir.features.entries import Discriminative, Entry
from repflat.rundir.label import RunLabel, run_label
from repflat.rundir.names import TRAIN

FINAL = "final"
"""`epoch="final"`: the last epoch saved for the split and layer."""


class FeatureSet(abc.ABC):
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

    The two kinds differ in where arrays come from (`load`, `labels`, `label_splits`,
    `discriminative`, `where`); everything else, and every docstring, is written once
    here: the subclasses' methods inherit theirs.
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
            raise UserError(f"no array for split {split!r}, epoch {epoch}, layer "
                            f"{layer!r} in {self.where}; saved: {', '.join(have[:20]) or 'none'}",
                            argument="features")
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

    @abc.abstractmethod
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

    @abc.abstractmethod
    def label_splits(self) -> list[str]:
        """The splits with labels (data splits; probe splits have none).

        Returns
        -------
        list of str
            Sorted, e.g. ["test", "train"].
        """

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

    @abc.abstractmethod
    def load(self, entry: Entry, *, verify: bool = True, mmap: bool = False) -> np.ndarray:
        """The array of one entry (from `select` or `get`).

        On disk, checked against its manifest checksum, shape and dtype; in memory, the
        array as held (not copied).

        Parameters
        ----------
        entry : Entry
            A saved array of this feature set.
        verify : bool, default True
            Check the file's sha256 against the manifest (on disk; nothing to verify in
            memory).
        mmap : bool, default False
            Map the file read-only (`np.memmap`) instead of reading it whole; a file read
            whole is checked against the memory budget first (on disk; an array in
            memory is there already).

        Returns
        -------
        ndarray
            The array, shape `entry.shape` (dtype `entry.dtype`).

        Raises
        ------
        repflat.errors.UserError
            On disk: if the file is missing, not a regular .npy file, outside the run
            directory, changed since written (checksum), of another shape or dtype than
            the manifest says, or larger than the memory budget.
        """

    @abc.abstractmethod
    def labels(self, split: str | None = None, *, verify: bool = True) -> np.ndarray:
        """The class of each row of `split`: integers >= 0, one per row of its features.

        Parameters
        ----------
        split : str, optional
            A split with labels (see `label_splits`); default "train", or the only one.
        verify : bool, default True
            Check the labels file's sha256 against the manifest (on disk; nothing to
            verify in memory).

        Returns
        -------
        ndarray of int, shape (n_samples,)
            One label per row of the split's features.

        Raises
        ------
        repflat.errors.UserError
            If the split has no labels; on disk also if the file is not one label per
            row, fails its checksum, or holds a negative label.
        """

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
    @abc.abstractmethod
    def where(self) -> str:
        """What the features are called in their repr and in error messages: the run
        directory, or the name given to features in memory."""

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


def checked_indices(indices: np.ndarray, n: int, where: str) -> np.ndarray:
    """A split's dataset indices as int64, or a UserError unless one index >= 0 per row."""
    if indices.shape != (n,) or indices.dtype.kind not in "iu" or (n and indices.min() < 0):
        raise expected(where, f"one dataset index >= 0 per row ({n} rows)",
                       f"shape {indices.shape} {indices.dtype}")
    return indices.astype(np.int64, copy=False)
