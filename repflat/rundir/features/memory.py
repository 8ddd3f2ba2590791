"""Features held in memory, as `repflat.extract(..., out=None)` returns them (`MemoryFeatures`)."""
from __future__ import annotations

import numpy as np

from repflat.errors import expected
from repflat.rundir.features.entries import Discriminative, Entry
from repflat.rundir.features.featureset import FINAL, FeatureSet, checked_indices
from repflat.rundir.label import RunLabel
from repflat.rundir.names import TRAIN


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
        self._indices_given = {s: checked_indices(np.asarray(v), len(np.asarray(v)), f"indices[{s!r}]")
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
        return sorted(self._labels)

    def _indices(self, split: str) -> np.ndarray | None:
        return self._indices_given.get(split)

    def load(self, entry: Entry, *, verify: bool = True, mmap: bool = False) -> np.ndarray:
        return self.arrays[entry.split, entry.epoch, entry.layer]

    def labels(self, split: str | None = None, *, verify: bool = True) -> np.ndarray:
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
