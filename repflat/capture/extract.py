"""`repflat extract` and its Python API: the hidden features of any model, to a run directory.

    from repflat.capture.extract import extract
    extract(model, ["layer3", "layer4"], DigitsData(), "out/", splits=("test",), reduce="avg")

`model` is any `nn.Module` (for the CLI: a repflat run, or a torchvision model by name
with an optional weights file). Layers are named as `model.named_modules()` names them,
or as torchvision's `get_graph_node_names` names functional nodes. The output directory
gets `extract.yaml` (what was extracted, from which weights) and `features/` in the
run-directory format, so `repflat analyze` reads it like any run.
"""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from repflat.capture.engine import STATE_DIR, capture_split, model_fingerprint, pending_state
from repflat.config import DataConfig
from repflat.training.data import Data, load_data
from repflat.training.distributed import from_env, local_device, resolve_device
from repflat.config.schema import FEATURE_DTYPES, REDUCTIONS
from repflat.errors import UserError, choice, expected
from repflat.capture.hooks import check_layers
from repflat.rundir.lock import exclusive
from repflat.rundir.run import NEW, claimed_by
from repflat.rundir.arrays import PARTIAL
from repflat.rundir.features import FeatureWriter, Features
from repflat.rundir.files import write_text
from repflat.config._strict import to_plain
from repflat.rundir.names import EXTRACT_FILE, FORMAT, SPLITS, RunState
from repflat.config.loading import dump_yaml



def _check_out(out: Path, description: dict, resume: bool, restart: bool) -> str:
    """NEW, or RESUME (this extraction, possibly unfinished), or a UserError; writes nothing."""
    previous = claimed_by(out, EXTRACT_FILE, "`repflat extract`")
    if previous is NEW:
        return RunState.NEW
    if previous != description:
        raise UserError(f"out: {out} holds a different extraction (its {EXTRACT_FILE} differs: "
                        "other model, weights, layers, data or settings); choose another directory")
    if pending_state(out) and not (resume or restart):
        raise UserError(f"out: {out} holds an interrupted extraction; resume it (--resume, resume=True) "
                        "or start it over (--restart, restart=True)")
    return RunState.RESUME


def _clear_partials(out: Path) -> None:
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    for partial in (out / "features").rglob(f"*{PARTIAL}"):
        partial.unlink()


def extract(model: nn.Module, layers: Sequence[str], data: DataConfig | Data, out: str | Path, *,
            splits: Sequence[str] = ("train",), epoch: int = 0, batch_size: int = 256,
            reduce: str = "flatten", dtype: str = "float32", device: str = "cpu", workers: int = 0,
            resume: bool = False, restart: bool = False, progress: bool = True,
            source: dict | None = None) -> Features:
    """Capture `layers` of `model` for each split of `data` into the directory `out`.

    An interrupted extraction is continued with `resume=True` or discarded with
    `restart=True`; a directory holding another extraction is refused, untouched.
    """
    out = Path(out)
    choice("reduce", reduce, REDUCTIONS)
    choice("dtype", dtype, FEATURE_DTYPES)
    if batch_size < 1:
        raise expected("batch_size", "an integer >= 1", batch_size)
    if resume and restart:
        raise UserError("resume, restart: expected at most one of them")
    for split in splits:
        if split not in SPLITS:
            raise expected("splits", "train or test", split)
    if not layers:
        raise expected("layers", "at least one layer name", "")
    layers = check_layers(model, layers, "layers", graph_nodes=True)
    dev = local_device(resolve_device(device))
    loaded = data if isinstance(data, Data) else load_data(data)
    description = {
        "format": FORMAT, "model": source or {"source": "python", "class": type(model).__name__},
        "model_sha256": model_fingerprint(model), "layers": list(layers),
        "data": to_plain(data) if not isinstance(data, Data) else {"name": "python"},
        "splits": list(splits), "epoch": epoch, "batch_size": batch_size, "reduce": reduce,
        "dtype": dtype}
    state = _check_out(out, description, resume, restart)
    if state is RunState.RESUME:
        FeatureWriter(out)  # a corrupt manifest is refused before anything is written
    dist = from_env(dev)
    with exclusive(out) if dist.main else contextlib.nullcontext():
        if dist.main:
            if restart:
                _clear_partials(out)
            write_text(out / EXTRACT_FILE, dump_yaml(description))
        dist.barrier()
        model = model.to(dev)
        writer = FeatureWriter(out)
        for split in splits:
            if state is RunState.RESUME and all(writer.has(split, epoch, l) for l in layers) \
                    and split in writer.manifest["labels"]:
                continue  # done in an earlier call
            capture_split(model, loaded.datasets[split], layers, writer, split=split,
                          epoch=epoch, device=dev, batch_size=batch_size, reduce=reduce,
                          dtype=dtype, dist=dist, resume=resume,
                          fingerprint=description["model_sha256"], workers=workers,
                          progress=progress)
    return Features(out)

