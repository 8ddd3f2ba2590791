"""What `extract` accepts as data, as named splits of map-style datasets.

- a DataConfig (`DigitsData()`, `ImageData(name="cifar10", root=...)`) or a loaded
  `repflat.base.data.Data`: its splits;
- a torch `Dataset` yielding `(input, label)`: one split;
- a `DataLoader`: one split, read as the loader reads it (its sampler's order, its
  batches, its `collate_fn`), each row recorded with its dataset index (see `Rows`);
- a pair `(X, y)` of arrays or tensors: one split;
- a dict `{split: Dataset | DataLoader | (X, y)}`: several splits.

A single data set is named by the caller (`splits="test"`): nothing says whether a
loader holds training or test data.

Class names come from the caller, else from the data set's `classes` attribute (as
torchvision's ImageFolder, CIFAR and MNIST have it, also behind a Subset or a
DataLoader), else there are none.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, default_collate

from repflat.config import DigitsData, ImageData, Mnist1dData, SpiralsData
from repflat.strict import to_plain
from repflat.errors import UserError, expected, unknown
from repflat.rundir.names import SPLITS, TRAIN
from repflat.base.data import Data, load_data

KINDS = ("a DataConfig, a Dataset of (input, label) items, a DataLoader, a pair (X, y) of "
         "arrays or tensors, or a dict {split: one of these}")
PYTHON = {"name": "python"}
"""extract.yaml's `data` for data handed over in Python (it has no config to record)."""


@dataclass(frozen=True)
class Rows:
    """One split to capture: items of a map-style dataset, in order, in batches.

    Row i is item `order[i]` of `dataset` (item i when `order` is None); a DataLoader's
    rows keep its sampler's order, its batch sizes (`batches`), its `collate_fn` and its
    worker count, so the rows are the ones a loop over the loader sees.
    """

    dataset: Dataset
    order: np.ndarray | None = None
    """The dataset index of each row; None: row i is item i."""
    batches: tuple[int, ...] | None = None
    """The loader's batch sizes, in order; None: batches of the extraction's batch size."""
    collate: Callable | None = None
    """The loader's collate_fn; None: torch's default."""
    workers: int | None = None
    """The loader's worker processes; None: the extraction's `workers`."""

    def __len__(self) -> int:
        return len(self.order) if self.order is not None else len(self.dataset)

    def indices(self, rows: range) -> Sequence[int]:
        """The dataset indices of a range of rows."""
        return rows if self.order is None else self.order[rows.start:rows.stop]


def as_rows(data: Dataset | Rows) -> Rows:
    return data if isinstance(data, Rows) else Rows(data)


def _is_index(i: object) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def loader_rows(loader: DataLoader, where: str) -> Rows:
    """The rows a loop over `loader` sees, with the dataset index of each, or a UserError
    saying why they cannot be told."""
    dataset = loader.dataset
    _check_map_style(dataset, where)
    if loader.batch_sampler is None:
        raise expected(where, "a DataLoader that makes batches (batch_size=None gives single "
                       "items, with no batch axis)", "batch_size=None")
    try:
        n_batches = len(loader.batch_sampler)
    except TypeError:
        raise expected(where, "a DataLoader whose sampler has a length (an endless sampler "
                       "never ends the pass)", type(loader.sampler).__name__) from None
    batches = [list(b) for b in itertools.islice(loader.batch_sampler, n_batches)]
    flat = [i for b in batches for i in b]
    bad = next((i for i in flat if not _is_index(i)), None)
    if bad is not None:
        raise expected(where, "a DataLoader whose sampler yields dataset indices (integers), "
                       "so each row can be matched to its item and label", f"{type(bad).__name__} {bad!r}")
    order = np.asarray(flat, dtype=np.int64)
    if len(order) and (order.min() < 0 or order.max() >= len(dataset)):
        raise expected(where, f"sampler indices from 0 to {len(dataset) - 1}",
                       int(order.min() if order.min() < 0 else order.max()))
    sizes = tuple(len(b) for b in batches)
    identity = len(order) == len(dataset) and np.array_equal(order, np.arange(len(order)))
    collate = None if loader.collate_fn is default_collate else loader.collate_fn
    return Rows(dataset, None if identity else order, sizes, collate, loader.num_workers)


def _check_map_style(obj: object, where: str) -> None:
    if isinstance(obj, IterableDataset) or (isinstance(obj, Dataset) and not hasattr(obj, "__len__")):
        raise expected(where, "a map-style Dataset (with __len__ and __getitem__; rows must keep "
                       "their order to line up with their labels)", type(obj).__name__)


@dataclass(frozen=True)
class Splits:
    """The data of one extraction."""

    datasets: dict[str, Dataset | Rows]
    """Each split to capture, in order: a map-style dataset of (input, label), or the
    rows of a DataLoader."""
    class_names: list[str] | None
    description: dict
    """What extract.yaml records as the data."""
    batch_size: int | None = None
    """The batch size of the DataLoaders handed over, when they agree on one."""


def _chosen(splits: Sequence[str] | None, available: Sequence[str],
            default: Sequence[str]) -> tuple[str, ...]:
    if isinstance(splits, str):
        splits = (splits,)
    chosen = tuple(default if splits is None else splits)
    if not chosen:
        raise expected("splits", "at least one split", list(chosen))
    for split in chosen:
        if split not in SPLITS:
            raise expected("splits", " or ".join(SPLITS), split)
        if split not in available:
            raise unknown("splits", split, list(available))
    return chosen


def checked_names(names: object, argument: str = "class_names") -> list[str] | None:
    """`names` as a list of str (index = label), or a UserError naming `argument`."""
    if names is None:
        return None
    if isinstance(names, (str, bytes, dict)) or not isinstance(names, (Sequence, np.ndarray)) \
            or not all(isinstance(n, str) for n in names):
        raise expected(argument, "a list of names, one per class label (index = label)",
                       type(names).__name__)
    return [str(n) for n in names]


def dataset_classes(obj: object) -> list[str] | None:
    """The `classes` of a dataset, or of the dataset behind a Subset or a DataLoader."""
    for _ in range(4):
        classes = getattr(obj, "classes", None)
        if isinstance(classes, (list, tuple)) and classes:
            return [str(c) for c in classes]
        obj = getattr(obj, "dataset", None)
        if obj is None:
            break
    return None


def _pair(pair: tuple, where: str) -> TensorDataset:
    x, y = pair
    kinds = (torch.Tensor, np.ndarray)
    if not isinstance(x, kinds) or not isinstance(y, kinds):
        raise expected(where, "a pair (X, y) of arrays or tensors",
                       f"a pair of {type(x).__name__} and {type(y).__name__}")
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)  # numpy's float64 default is not a choice made for the model
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    if x.dim() < 1 or y.shape != (len(x),) or y.dtype.is_floating_point or y.dtype.is_complex \
            or y.dtype == torch.bool:
        raise expected(where, "X of shape (n_samples, ...) and y of n_samples integer labels",
                       f"X of shape {tuple(x.shape)}, y of shape {tuple(y.shape)} ({y.dtype})")
    if len(y) and int(y.min()) < 0:
        raise expected(where, "class labels >= 0", int(y.min()))
    return TensorDataset(x, y.to(torch.int64))


def _one(obj: object, where: str) -> tuple[Dataset | Rows, int | None]:
    """One split as a map-style dataset (a DataLoader's as its rows), and its DataLoader's
    batch size if it came in one."""
    if isinstance(obj, DataLoader):
        return loader_rows(obj, where), obj.batch_size
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and not isinstance(obj[0], Dataset):
        return _pair(tuple(obj), where), None
    _check_map_style(obj, where)
    if not isinstance(obj, Dataset):
        raise expected(where, KINDS, type(obj).__name__)
    return obj, None


def _either(given: list[str] | None, known: Sequence[str] | None) -> list[str] | None:
    return given if given is not None else list(known) if known is not None else None


def _same_classes(found: dict[str, list[str] | None]) -> list[str] | None:
    named = {s: n for s, n in found.items() if n is not None}
    if len({tuple(n) for n in named.values()}) > 1:
        raise UserError("the splits name different classes ("
                        + "; ".join(f"{s}: {', '.join(n[:5])}{', …' if len(n) > 5 else ''}"
                                    for s, n in named.items()) + "); pass class_names",
                                    argument="data")
    return next(iter(named.values()), None)


def as_splits(data: object, splits: Sequence[str] | None, class_names: object = None) -> Splits:
    """The splits of `data` to capture: `splits`, by default the dict's keys or a data
    config's train split; a single data set's split must be named.

    A DataLoader is read as a loop over it reads it (`loader_rows`): its sampler's order
    and batches, its collate_fn; each row's dataset index is kept beside its label.
    """
    names = checked_names(class_names)
    if isinstance(data, Data):
        chosen = _chosen(splits, list(data.datasets), (TRAIN,))
        return Splits({s: data.datasets[s] for s in chosen}, _either(names, data.class_names),
                      dict(PYTHON))
    if isinstance(data, (SpiralsData, DigitsData, Mnist1dData, ImageData)):
        chosen = _chosen(splits, SPLITS, (TRAIN,))
        loaded = load_data(data, chosen)
        return Splits({s: loaded.datasets[s] for s in chosen}, _either(names, loaded.class_names),
                      to_plain(data))
    if isinstance(data, dict):
        if not data:
            raise expected("data", "at least one split in the dict", "{}")
        for key in data:
            if key not in SPLITS:
                raise expected("data", "a dict keyed by split (" + " or ".join(SPLITS) + ")", key)
        chosen = _chosen(splits, list(data), tuple(data))
        items = {s: (data[s], f"data[{s!r}]") for s in chosen}
    else:
        one = _one(data, "data")  # what the data is wrong about comes first
        if splits is None:
            raise UserError("name the split of a single data set, splits=\"train\" or "
                            "splits=\"test\" (nothing says which it holds; a dict {split: data} "
                            "names several)", argument="splits")
        chosen = _chosen(splits, SPLITS, (TRAIN,))
        if len(chosen) != 1:
            raise expected("splits", "one split for a single data set (a dict {split: data} "
                           "gives several)", list(chosen))
        items = {chosen[0]: (data, "data")}
    datasets, sizes = {}, set()
    for split, (obj, where) in items.items():
        datasets[split], size = one if not isinstance(data, dict) else _one(obj, where)
        sizes |= {size} if size else set()
    if names is None:
        names = _same_classes({s: dataset_classes(obj) for s, (obj, _) in items.items()})
    return Splits(datasets, names, dict(PYTHON), sizes.pop() if len(sizes) == 1 else None)


def check_names_fit(names: list[str] | None, labels: dict[str, np.ndarray]) -> None:
    """Refuse class names that do not name every label."""
    top = max((int(y.max()) for y in labels.values() if len(y)), default=-1)
    if names is not None and top >= len(names):
        raise expected("class_names", f"a name for every class label (0 to {top})",
                       f"{len(names)} names")
