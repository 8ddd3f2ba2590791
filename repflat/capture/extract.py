"""`repflat extract` and its Python API: the hidden features of any model, in memory or
in a run directory.

    import repflat
    fs = repflat.extract(model, ["layer3", "layer4"], test_loader, splits="test", reduce="avg")
    fs.array("layer4"), fs.labels(), fs.class_names, fs.indices()
    repflat.extract(model, ["layer4"], {"train": train_set, "test": test_set}, "out/",
                    arm="mixup", strategy="manifold_mixup", seed=0)

`model` is any `nn.Module` (for the CLI: a repflat run, or a torchvision model by name
with an optional weights file). Layers are named as repflat.base.layers says (module
names, `name:N` for a reused module's calls, FX function nodes; `repflat.layers`
lists them). An output directory gets `extract.yaml` (what was extracted, from which
weights, for which run) and `features/` in the run-directory format, so `repflat
analyze` reads it like any run. Both destinations take the rows of one capture loop
(repflat.capture.engine), so they hold the same arrays. Before anything is written, the
first rows go through the model once, so a name that cannot be read (a reused module's
bare name, a module that does not run) is refused with nothing on disk.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from repflat.capture.engine import (DEFAULT_BATCH, STATE_DIR, Taker, capture_arrays, capture_split,
                                    first_rows, model_fingerprint, pending_state, take)
from repflat.base.layers import evaluating
from repflat.base.naming import check_layers
from repflat.capture.discriminative import rows_summaries
from repflat.capture.inputs import Splits, as_splits, check_names_fit
from repflat.strict import dump_yaml
from repflat.config.schema import FEATURE_DTYPES, REDUCTIONS
from repflat.errors import UserError, choice, expected, public
from repflat.rundir.arrays import PARTIAL
from repflat.rundir.features import Discriminative, FeatureSet, Features, FeatureWriter, MemoryFeatures
from repflat.files import write_text
from repflat.rundir.label import RunLabel, run_label
from repflat.rundir.lock import exclusive
from repflat.rundir.names import EXTRACT_FILE, FORMAT, RunState
from repflat.rundir.lock import NEW, claimed_by, first_difference
from repflat.progress import say
from repflat.base.distributed import from_env, local_device, resolve_device


@dataclass(frozen=True)
class ExtractOptions:
    """What an extraction takes besides the model, its layers, the data and `out`: the
    keywords of `extract` (its Parameters say what each does), held once."""

    splits: Sequence[str] | str | None = None
    class_names: Sequence[str] | None = None
    arm: str | None = None
    strategy: str | None = None
    seed: int | None = None
    values: dict | None = None
    epoch: int = 0
    batch_size: int | None = None
    reduce: str = "flatten"
    dtype: str = "float32"
    device: str = "cpu"
    workers: int = 0
    resume: bool = False
    restart: bool = False
    progress: bool | None = None
    source: dict | None = None
    discriminative: bool = False


@dataclass
class Extraction:
    """One extraction, checked and described, before anything is computed or written."""

    options: ExtractOptions
    model: nn.Module
    layers: tuple[str, ...]
    data: Splits
    batch_size: int
    device: torch.device
    description: dict
    taker: Taker
    run: RunLabel | None

    def batch_for(self, rows) -> int | None:
        """The batch size to capture `rows` with; None (no batch size was given): the
        batches of the DataLoader they came from."""
        return None if self.options.batch_size is None and getattr(rows, "batches", None) \
            else self.batch_size


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _prepare(model, layers, data, o: ExtractOptions) -> Extraction:
    if not isinstance(model, nn.Module):
        raise expected("model", "a torch nn.Module", type(model).__name__)
    choice("reduce", o.reduce, REDUCTIONS)
    choice("dtype", o.dtype, FEATURE_DTYPES)
    if o.batch_size is not None and not (_is_int(o.batch_size) and o.batch_size >= 1):
        raise expected("batch_size", "an integer >= 1", o.batch_size)
    run = run_label(o.arm, o.strategy, o.seed, o.values)
    if isinstance(layers, str):
        layers = [layers]
    if not layers:
        raise expected("layers", "at least one layer name", "")
    found = as_splits(data, o.splits, o.class_names)
    first = next(iter(found.datasets.values()))
    dev = local_device(resolve_device(o.device))
    model = model.to(dev)
    example = first_rows(first, 2).to(dev) if len(first) else None
    layers = check_layers(model, layers, "layers", graph_nodes=True, example=example)
    taker = Taker(model, layers, o.reduce)
    if example is not None:  # every name read once, before anything is written
        with evaluating(model):
            take(taker, example, dev)
    description = {
        "format": FORMAT, "model": o.source or {"source": "python", "class": type(model).__name__},
        "model_sha256": model_fingerprint(model), "layers": list(layers), "data": found.description,
        "splits": list(found.datasets), "epoch": o.epoch,
        "batch_size": o.batch_size or found.batch_size or DEFAULT_BATCH, "reduce": o.reduce,
        "dtype": o.dtype} | ({"discriminative": True} if o.discriminative else {})
    # absent rather than null: directories written before them still match
    description |= run.as_yaml() if run is not None else {}
    return Extraction(o, model, layers, found, description["batch_size"], dev, description,
                      taker, run)


@public
def extract(model: nn.Module, layers: Sequence[str], data: object, out: str | os.PathLike | None = None,
            *, splits: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
            arm: str | None = None, strategy: str | None = None, seed: int | None = None,
            values: dict | None = None, epoch: int = 0, batch_size: int | None = None,
            reduce: str = "flatten", dtype: str = "float32", device: str = "cpu", workers: int = 0,
            resume: bool = False, restart: bool = False, progress: bool | None = None,
            source: dict | None = None, discriminative: bool = False) -> FeatureSet:
    """The features of `layers` of `model` for each split of `data`, in memory or in `out`.

    Parameters
    ----------
    model : nn.Module
        Any module; it runs in eval mode for the pass (its mode is restored after) and
        is moved to `device`.
    layers : sequence of str
        Module names as `model.named_modules()` gives them (`"layer4"`, `"fc"`), each
        call of a module that runs several times per forward pass as `"name:1"`,
        `"name:2"` (its bare name is refused), `"input"`, or torchvision FX node names of
        operations that are not modules (`"layer1.0.add"`). Each name means the same
        tensor whatever else is asked; `repflat.layers(model, example)` lists them with
        their shapes. An unknown name is an error listing the close matches.
    data : DataConfig, Data, Dataset, DataLoader, (X, y) or dict
        - a DataConfig (`DigitsData()`, `ImageData(name="cifar10", root=...)`) or a
          `repflat.base.data.Data`: its splits;
        - a map-style torch `Dataset` yielding `(input, label)`: one split;
        - a `DataLoader`: read as a loop over it reads it: its sampler's order (a
          `SubsetRandomSampler`'s rows only, shuffled as drawn), its batches and
          `drop_last`, its `collate_fn`; each row keeps its label and its dataset index
          (`fs.indices(split)`). A loader whose sampler yields something other than
          dataset indices, or never ends, is refused;
        - a pair `(X, y)` of arrays or tensors, `X` of shape (n_samples, ...) and `y`
          of n_samples labels: one split (numpy floats become float32);
        - a dict `{split: Dataset | DataLoader | (X, y)}`: several splits.
        Labels must be integers >= 0.
    out : path, optional
        None (default): the features are returned in memory and nothing is written,
        anywhere. A directory: they are streamed into it in the run-directory format
        (memory stays flat however many rows; `repflat analyze` reads it); a directory
        holding another extraction is refused, untouched, naming the field that differs.
    splits : "train", "test" or a sequence of them, optional
        The splits to capture: by default every split of a dict or of a DataConfig's
        train split. A single data set is one split, which you name (`splits="test"`):
        nothing says whether a loader holds training or test data.
    class_names : list of str, optional
        The name of each class, index = label. Default: the data set's `classes`
        (torchvision's ImageFolder, CIFAR, MNIST; also behind a Subset or a DataLoader),
        else none.
    arm, strategy, seed, values : optional
        Which run the model is (see `repflat.rundir.label.RunLabel`): the arm tables
        group by ("erm", "mixup"), its strategy ("none" marks ERM, "input_mixup",
        "manifold_mixup", or a word of your own), its seed (runs of two arms are paired
        by seed; `repflat extract --model NAME --seed S` also draws the model with it)
        and swept values ({"alpha": 2.0}). Recorded in extract.yaml and on the feature
        set (`fs.run`), so `repflat.analysis.compute` and `repflat analyze` compare your
        runs as they compare repflat's.
    epoch : int
        The epoch the features are filed under (a trained run's last; default 0).
    batch_size : int, optional
        Rows per forward pass: a DataLoader's own batches when none is given, else 256.
    reduce : {"flatten", "avg", "max"}
        A conv map (n, C, H, W) keeps every value, or is averaged or maxed over H, W.
    dtype : {"float32", "float16"}
        The stored features' type.
    device : {"cpu", "cuda", "auto"}
    workers : int
        DataLoader worker processes reading the items.
    resume, restart : bool
        With `out`: continue an interrupted extraction, or discard it and start over.
    progress : bool, optional
        A progress bar (a widget in Jupyter, plain lines where no widget can show). None
        (default): shown in a notebook or on a terminal, for passes that last.
    source : dict, optional
        What the model is, for extract.yaml (the CLI records the run or torchvision name).
    discriminative : bool, default False
        Also save each layer's discriminative summary (repflat.capture.discriminative:
        the directions in which the model's class-centred logits change), which
        Corollary 1's measures need (`along_spread`, `across_spread`, the collapse flag;
        without it the analysis has the paper's raw statistics only). Costs one forward
        and K backward passes per batch (benchmarks/discriminative.py: a few times the
        plain pass at K <= 10); module outputs and the input (not `name:N` calls or
        function nodes, which are said), at most `max_width(K)` features wide.

    Returns
    -------
    MemoryFeatures when `out` is None, else `Features(out)`: the same arrays either way,
    `fs.array(layer, split=...)` of shape (n_samples, n_features), `fs.labels(split)`,
    `fs.indices(split)`, `fs.class_names`, `fs.run`.

    Under torchrun, `out` splits the batches between the processes; in memory, every
    process computes every row.
    """
    options = ExtractOptions(splits, class_names, arm, strategy, seed, values, epoch, batch_size,
                             reduce, dtype, device, workers, resume, restart, progress, source,
                             discriminative)
    if out is not None:
        extract_to(model, layers, data, out, options)
        return Features(out)
    if resume or restart:
        raise UserError("expected only with out (a directory to continue or "
                        "start over); in memory every extraction starts afresh",
                        argument="resume, restart")
    job = _prepare(model, layers, data, options)
    arrays, labels, indices, summaries = {}, {}, {}, {}
    for split, rows in job.data.datasets.items():
        taken, labels[split] = capture_arrays(
            job.model, rows, job.layers, split=split, device=job.device,
            batch_size=job.batch_for(rows), reduce=reduce, dtype=dtype, workers=workers,
            progress=progress, taker=job.taker)
        arrays |= {(split, epoch, layer): a for layer, a in taken.items()}
        if getattr(rows, "order", None) is not None:
            indices[split] = rows.order
    check_names_fit(job.data.class_names, labels)
    if discriminative:
        K = _n_classes(job.data.class_names, labels)
        for split, rows in job.data.datasets.items():
            found, counts = _summaries(job, rows, K, split)
            summaries |= {(split, epoch, l): Discriminative(f, t, counts) for l, (f, t) in found.items()}
    return MemoryFeatures(arrays, labels, job.data.class_names, indices=indices, run=job.run,
                          discriminative=summaries)


def _n_classes(class_names, labels: dict) -> int:
    """K for the discriminative summaries: the class names' count, else the largest label + 1."""
    top = max((int(np.max(y)) + 1 for y in labels.values() if len(y)), default=0)
    return max(len(class_names or ()), top)


def _summaries(job: Extraction, rows, n_classes: int, split: str):
    """The discriminative summaries of one split (extract's `discriminative=True`), saying
    which layers are left out and why."""
    found, counts, skipped = rows_summaries(job.model, rows, job.layers, n_classes, device=job.device,
                                            batch_size=job.batch_size, reduce=job.options.reduce)
    for layer, why in skipped.items():
        say(f"{split}: discriminative summary of {layer!r} not saved ({why}): Corollary 1's "
            "measures are left out there", show=True)
    return found, counts


def _check_out(out: Path, description: dict, resume: bool, restart: bool) -> str:
    """NEW, or RESUME (this extraction, possibly unfinished), or a UserError; writes nothing."""
    previous = claimed_by(out, EXTRACT_FILE, "`repflat extract`")
    if previous is NEW:
        return RunState.NEW
    if previous != description:
        differs = (first_difference(previous, description) if isinstance(previous, dict)
                   else f"its {EXTRACT_FILE} is unreadable")
        if differs.startswith("model_sha256:"):  # two hashes say less than this
            differs = ("model_sha256: other weights here than on disk; a model drawn at random "
                       "is drawn again only with the same seed")
        raise UserError(f"{out} holds a different extraction ({differs}); choose another "
                        "directory", argument="out")
    if pending_state(out) and not (resume or restart):
        raise UserError(f"{out} holds an interrupted extraction; resume it (--resume, resume=True) "
                        "or start it over (--restart, restart=True)", argument="out")
    return RunState.RESUME


def _clear_partials(out: Path) -> None:
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    for partial in (out / "features").rglob(f"*{PARTIAL}"):
        partial.unlink()


def _split_done(writer: FeatureWriter, job: Extraction, split: str) -> bool:
    return all(writer.has(split, job.options.epoch, layer) for layer in job.layers) \
        and split in writer.manifest["labels"]


def extract_to(model: nn.Module, layers: Sequence[str], data: object, out: str | os.PathLike,
               options: ExtractOptions = ExtractOptions()) -> RunState:
    """`extract(..., out=out)` with its keywords as `options`, saying what it did: NEW
    (extracted), RESUME (continued or completed an extraction in `out`) or COMPLETE (all
    there already: nothing written)."""
    if not isinstance(out, (str, os.PathLike)):
        raise expected("out", "a directory path, or None for features in memory", type(out).__name__)
    o = options
    if o.resume and o.restart:
        raise UserError("expected at most one of them", argument="resume, restart")
    out = Path(out)
    job = _prepare(model, layers, data, o)
    state = _check_out(out, job.description, o.resume, o.restart)
    names = job.data.class_names
    if state is RunState.RESUME:
        writer = FeatureWriter(out)  # a corrupt manifest is refused before anything is written
        if all(_split_done(writer, job, s) for s in job.data.datasets) \
                and names in (None, writer.manifest.get("class_names")):
            return RunState.COMPLETE
    dist = from_env(job.device)
    with exclusive(out, kind="extract") if dist.main else contextlib.nullcontext():
        if dist.main:
            if o.restart:
                _clear_partials(out)
            write_text(out / EXTRACT_FILE, dump_yaml(job.description))
        dist.barrier()
        writer = FeatureWriter(out, held=dist.main)
        captured = []
        for split, rows in job.data.datasets.items():
            if state is RunState.RESUME and _split_done(writer, job, split):
                continue  # done in an earlier call
            capture_split(job.model, rows, job.layers, writer, split=split, epoch=o.epoch,
                          device=job.device, batch_size=job.batch_for(rows), reduce=o.reduce,
                          dtype=o.dtype, dist=dist, resume=o.resume,
                          fingerprint=job.description["model_sha256"], workers=o.workers,
                          progress=o.progress, taker=job.taker)
            captured.append(split)
        if dist.main and (names is not None or o.discriminative):
            features = Features(out)  # every split's labels, read once
            labels = {s: features.labels(s) for s in job.data.datasets}
            have = {d[0].split for d in features.discriminative_entries if d[0].epoch == o.epoch}
            if o.discriminative:  # K over every split, as in memory; a split whose summaries
                K = _n_classes(names, labels)  # an interrupted call did not write, too
                for split in [s for s in job.data.datasets if s in captured or s not in have]:
                    found, counts = _summaries(job, job.data.datasets[split], K, split)
                    for layer, (factor, trace) in found.items():
                        writer.add_discriminative(split, o.epoch, layer, factor, trace, counts)
            if names is not None:
                check_names_fit(names, labels)
                writer.set_class_names(names)
    return state
