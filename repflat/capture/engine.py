"""Feature capture: one pass over a split, every requested layer, to disk or to memory.

`batch_rows` is the one capture loop: batches of rows in order, each through the model
once, every layer reduced and cast the same way, labels checked. Row i is item
`order[i]` of the data set: item i, or where a DataLoader's sampler put it
(repflat.capture.inputs.Rows), batched as the loader batches. Two destinations take
its rows: `capture_split` streams them into a run directory (behind `repflat extract`,
its Python API with `out=`, and the captures a training run makes at chosen epochs) and
`capture_arrays` fills arrays in memory (`repflat.extract(..., out=None)`), so both give
the same arrays bit for bit. Streaming, for each split:

1. The first batch fixes each layer's width; the arrays are preallocated on disk at
   their full size under `.partial` names (`repflat.rundir.features.ArrayStream`).
2. Batches go through the model in eval mode; hooks copy each layer's output, reduced
   to (batch, n_features) by a documented rule, and its rows are written in place.
   Memory therefore stays flat however many samples there are.
3. Under `torchrun`, batch b belongs to rank b mod world_size: every rank computes the
   same batches a single process would, so the arrays are identical, and each rank
   writes its own rows.
4. After every batch the rank records how many of its batches are on disk in a small
   state file; `resume=True` continues from there after an interruption.
5. When all ranks are done, rank 0 hashes each array, moves it to its final name and
   lists it in the manifest: the manifest never names a partial array.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from repflat.base.distributed import Dist
from repflat.progress import progress_bar
from repflat.config.schema import REDUCTIONS
from repflat.errors import UserError, choice, expected, first_line
from repflat.files import check_budget, read_json
from repflat.base.graph import did_not_run
from repflat.base.layers import evaluating, is_module_layer, layer_names, recording
from repflat.capture.inputs import Rows, as_rows
from repflat.rundir.arrays import PARTIAL, ArrayStream
from repflat.rundir.features import FeatureWriter
from repflat.files import write_text
from repflat.rundir.names import LABELS, feature_path, labels_path

STATE_DIR = "features/.partial"
DEFAULT_BATCH = 256
"""Rows per forward pass when neither the caller nor a DataLoader says."""


def reduce_features(t: torch.Tensor, how: str) -> torch.Tensor:
    """A layer output of shape (n, C, *rest) as (n, n_features), in new memory.

    - `flatten`: every value, (n, C·∏rest) — exact, but large for early conv maps;
    - `avg`: global average over the axes after the channel axis, (n, C);
    - `max`: global maximum over the same axes, (n, C).
    Outputs that are already (n, f) pass through as a copy under every rule.
    """
    if t.dim() <= 2 or how == "flatten":
        return t.reshape(len(t), -1).clone()
    dims = tuple(range(2, t.dim()))
    if how == "avg":
        return t.mean(dim=dims)
    if how == "max":
        return t.amax(dim=dims)
    raise ValueError(f"reduce_features: unknown rule {how!r}")  # checked by Taker


class Taker:
    """Calls the model on a batch and returns {layer: transform(output)}, by default the
    output reduced to (n, n_features) (`reduce_features`).

    Module names are read with forward hooks. When a name is an FX function node, every
    name is read in one pass of a traced copy instead (repflat.base.graph), each with
    the meaning it has alone; `trace` passes a trace already made.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], reduce: str = "flatten", *,
                 transform: Callable[[torch.Tensor], object] | None = None, trace=None):
        choice("reduce", reduce, REDUCTIONS)
        self.model, self.layers, self.reduce = model, tuple(layers), reduce
        self.transform = transform or self._reduce
        modules = set(layer_names(model))
        self.reader = None
        if not all(is_module_layer(name, modules) for name in self.layers):
            from repflat.base import graph

            tr = trace if trace is not None else graph.trace(model)
            if tr is None:
                name = next(n for n in self.layers if not is_module_layer(n, modules))
                raise UserError(f"{name!r} is not a module, and torch.fx cannot trace "
                                f"{type(model).__name__} to find it; name modules only",
                                argument="layers")
            self.reader = graph.GraphReader(model, tr, self.layers, self.transform)

    def _reduce(self, t: torch.Tensor) -> torch.Tensor:
        return reduce_features(t, self.reduce)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.reader is not None:
            return self.reader(x)
        with recording(self.model, self.layers, self.transform) as out:
            self.model(x)
        if len(out) < len(self.layers):
            raise did_not_run(next(n for n in self.layers if n not in out))
        return out


def batch_indices(n: int, batch_size: int) -> list[range]:
    return [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def row_batches(rows: Rows, batch_size: int | None) -> list[range]:
    """The batches of row positions: the loader's own batches when `batch_size` is None
    and the rows came from one, else `batch_size` rows at a time (DEFAULT_BATCH)."""
    if batch_size is None and rows.batches is not None:
        ends = np.cumsum((0, *rows.batches))
        return [range(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]
    return batch_indices(len(rows), batch_size or DEFAULT_BATCH)


def iterate(dataset: Dataset, batches: Sequence[Sequence[int]], workers: int,
            collate: Callable | None = None):
    """(x, y) for each batch of dataset indices, in order; a TensorDataset's tensors are
    indexed (sliced, for ranges) rather than collated, unless `collate` is given."""
    if isinstance(dataset, TensorDataset) and collate is None:
        if len(dataset.tensors) < 2:
            raise expected("data", "items (input, label)", "a TensorDataset of inputs alone")
        x, y = dataset.tensors[:2]
        for idx in batches:
            if isinstance(idx, range) and idx.step == 1:
                yield x[idx.start:idx.stop], y[idx.start:idx.stop]
            else:
                at = torch.as_tensor(np.asarray(idx, dtype=np.int64))
                yield x[at], y[at]
        return
    loader = DataLoader(dataset, batch_sampler=[[int(i) for i in b] for b in batches],
                        num_workers=workers, collate_fn=collate)
    for batch in loader:
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise expected("data", "items (input, label)", f"items collated to {type(batch).__name__}")
        yield batch[0], batch[1]


def first_rows(data: Dataset | Rows, k: int) -> torch.Tensor:
    """The inputs of the first `k` rows (fewer if there are fewer), as one batch."""
    rows = as_rows(data)
    (x, _), = iterate(rows.dataset, [rows.indices(range(0, min(k, len(rows))))], 0, rows.collate)
    return x


def checked_labels(y: object, n: int) -> np.ndarray:
    """A batch's labels as int64: one integer class >= 0 per input, or a UserError."""
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise expected("data", "one integer class label per input",
                       f"labels of dtype {y.dtype} and shape {y.shape} for {n} inputs")
    if n and y.min() < 0:
        raise expected("data", "class labels >= 0", int(y.min()))
    return y.astype(np.int64, copy=False)


def batch_rows(taker: Taker, rows: Rows, batches: Sequence[range], *, device: torch.device,
               dtype: str, workers: int = 0) -> Iterator[tuple[range, dict[str, np.ndarray]]]:
    """The capture loop: for each batch of row positions, in order, its rows of every
    layer (reduced by `taker`, cast to `dtype`) and, under `LABELS`, its labels."""
    torch_dtype = getattr(torch, dtype)
    items = iterate(rows.dataset, [rows.indices(b) for b in batches],
                    workers if rows.workers is None else rows.workers, rows.collate)
    for idx, (x, y) in zip(batches, items):
        out = take(taker, x, device)
        got = {layer: out[layer].to(torch_dtype).cpu().numpy() for layer in taker.layers}
        got[LABELS] = checked_labels(y, len(x))
        yield idx, got


def model_fingerprint(model: nn.Module) -> str:
    """sha256 of the model's parameters and buffers, to refuse resuming with other weights."""
    digest = hashlib.sha256()
    for name, t in model.state_dict().items():
        digest.update(name.encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Job:
    """What one capture pass writes; a resumed pass must be the same job."""

    split: str
    epoch: int
    layers: tuple[str, ...]
    reduce: str
    dtype: str
    n_samples: int
    batch_size: int
    world: int
    model: str  # fingerprint, or "" when not checked
    order: str = ""  # rows_digest: "" when row i is item i in batches of batch_size

    def state_path(self, root: Path, rank: int) -> Path:
        return root / STATE_DIR / f"{self.split}-epoch{self.epoch:04d}.rank{rank}.json"


def pending_state(root: str | Path) -> list[Path]:
    """State files of interrupted passes in a run directory."""
    return sorted((Path(root) / STATE_DIR).glob("*.json"))


def _read_done(job: Job, root: Path, rank: int) -> int | None:
    """Batches of this rank already on disk, or None if there is nothing to resume."""
    try:
        state = read_json(job.state_path(root, rank), "extraction state", limit=1 << 20)
    except (OSError, UserError):
        return None
    if not isinstance(state, dict) or state.get("job") != json.loads(json.dumps(asdict(job))):
        return None
    done = state.get("done", 0)
    return done if isinstance(done, int) and 0 <= done else None


def take(taker: Taker, x: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
    try:
        return taker(x.to(device, non_blocking=True))
    except RuntimeError as err:
        raise UserError(f"it does not accept inputs of shape {tuple(x.shape[1:])} from this "
                        f"data set ({first_line(err, None)})", argument="model") from None


def _open_streams(taker: Taker, dataset: Rows, job: Job, names: dict[str, str],
                  writer: FeatureWriter, mine: list[range], *, device: torch.device,
                  dist: Dist, resume: bool, workers: int):
    """The streams to fill, how many of this rank's batches are already on disk, and the
    rows of the batches still to write."""
    root = writer.root
    done = _read_done(job, root, dist.rank) if resume else None
    partials_exist = all((root / (p + PARTIAL)).is_file() for p in names.values())
    if dist.all_true(done is not None and done <= len(mine) and partials_exist):
        rows = batch_rows(taker, dataset, mine[done:], device=device, dtype=job.dtype, workers=workers)
        return {k: ArrayStream(root / p) for k, p in names.items()}, done, rows
    # Starting afresh: the first batch (batch 0 on rank 0) fixes each layer's width;
    # rank 0 preallocates every array before any rank writes a row.
    rows = batch_rows(taker, dataset, mine, device=device, dtype=job.dtype, workers=workers)
    first = [next(rows)] if mine else []
    if dist.main:
        for key, path in names.items():
            width = first[0][1][key].shape[1:]
            ArrayStream(root / path, (job.n_samples, *width), first[0][1][key].dtype).close()
    dist.barrier()
    return {k: ArrayStream(root / p) for k, p in names.items()}, 0, itertools.chain(first, rows)


def capture_split(model: nn.Module, dataset: Dataset | Rows, layers: Sequence[str],
                  writer: FeatureWriter, *, split: str, epoch: int, device: torch.device,
                  batch_size: int | None = DEFAULT_BATCH, reduce: str = "flatten",
                  dtype: str = "float32", dist: Dist = Dist(), resume: bool = False,
                  fingerprint: str = "", workers: int = 0, progress: bool | None = False,
                  taker: Taker | None = None) -> None:
    """Write every layer's features of `dataset` (and its labels, once; and the dataset
    index of each row when the rows are not the items in order) into `writer`.

    `batch_size` None takes the batches of the DataLoader the rows came from. Collective
    under torchrun: every rank calls it with the same arguments.
    """
    rows = as_rows(dataset)
    root, n = writer.root, len(rows)
    if n == 0:
        raise expected("data", f"a non-empty {split} split", 0)
    taker = taker or Taker(model, layers, reduce)
    batches = row_batches(rows, batch_size)
    order = rows_digest(rows, batches)
    if order and not dist.same(int(order[:15], 16)):
        raise UserError(f"the {split} loader's sampler gives each process another order "
                        "of rows; seed its generator (DataLoader(generator=...)) or pass the Dataset",
                        argument="data")
    job = Job(split, epoch, tuple(layers), reduce, dtype, n, batch_size or 0, dist.world,
              fingerprint, order)
    names = {layer: feature_path(split, epoch, layer) for layer in layers}
    if split not in writer.manifest["labels"]:
        names[LABELS] = labels_path(split)
    mine = batches[dist.rank::dist.world]
    state = job.state_path(root, dist.rank)
    streams: dict[str, ArrayStream] = {}
    with evaluating(model):
        try:
            streams, done, batch_iter = _open_streams(taker, rows, job, names, writer, mine,
                                                      device=device, dist=dist, resume=resume,
                                                      workers=workers)
            bar = progress_bar(total=sum(len(b) for b in mine), initial=sum(len(b) for b in mine[:done]),
                               desc=f"{split} epoch {epoch}", unit="sample", unit_scale=True,
                               show=progress if dist.main else False)
            for k, (idx, batch) in enumerate(batch_iter, start=done):
                for key, stream in streams.items():
                    stream.write_rows(idx.start, batch[key])
                # Rows reach the kernel's page cache before the state says so, which is what
                # survives a killed process; an fsync per batch would cost far more.
                write_text(state, json.dumps({"job": asdict(job), "done": k + 1}))
                bar.update(len(idx))
            bar.close()
        finally:
            for stream in streams.values():
                stream.close()
    dist.barrier()
    if dist.main:
        writer.commit_streams(split, epoch, {k: ArrayStream(root / p) for k, p in names.items()},
                              indices=rows.order)
    dist.barrier()
    state.unlink(missing_ok=True)
    if dist.main and (root / STATE_DIR).is_dir() and not any((root / STATE_DIR).iterdir()):
        os.rmdir(root / STATE_DIR)


def rows_digest(rows: Rows, batches: Sequence[range]) -> str:
    """sha256 of the rows' order and batches, "" when row i is item i in equal batches
    (what a resumed or a parallel pass must agree on)."""
    if rows.order is None and rows.batches is None:
        return ""
    digest = hashlib.sha256(np.asarray(rows.order if rows.order is not None else [], np.int64).tobytes())
    digest.update(np.asarray([len(b) for b in batches], np.int64).tobytes())
    return digest.hexdigest()


def capture_arrays(model: nn.Module, dataset: Dataset | Rows, layers: Sequence[str], *,
                   split: str, device: torch.device, batch_size: int | None = DEFAULT_BATCH,
                   reduce: str = "flatten", dtype: str = "float32", workers: int = 0,
                   progress: bool | None = False, taker: Taker | None = None
                   ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every layer's features of `dataset` and its labels, in memory: ({layer: (n_samples,
    n_features)}, labels). The rows `capture_split` writes to disk, held in arrays."""
    rows = as_rows(dataset)
    n = len(rows)
    if n == 0:
        raise expected("data", f"a non-empty {split} split", 0)
    taker = taker or Taker(model, layers, reduce)
    batches = row_batches(rows, batch_size)
    arrays: dict[str, np.ndarray] = {}
    with evaluating(model), progress_bar(total=n, desc=split, unit="sample", unit_scale=True,
                                         show=progress) as bar:
        for idx, got in batch_rows(taker, rows, batches, device=device, dtype=dtype,
                                   workers=workers):
            if not arrays:  # the first batch fixes each layer's width
                need = sum(n * r[0].nbytes for r in got.values())
                check_budget(need, "out", f"holding the {split} features in memory (out=None; "
                             "pass out=DIR to stream them to disk)")
                arrays = {key: np.empty((n, *r.shape[1:]), r.dtype) for key, r in got.items()}
            for key, r in got.items():
                arrays[key][idx.start:idx.stop] = r
            bar.update(len(idx))
    labels = arrays.pop(LABELS)
    return arrays, labels
