"""What a training run saves after a chosen epoch.

Features of the configured layers for each split go through the streaming capture
engine (`repflat.capture.engine`), the same path `repflat extract` uses; for 2-D inputs
the probe grids the boundary pictures are drawn from go too, at the final epoch only
(`repflat.capture.probes2d`).
"""
from __future__ import annotations

import torch
from torch import nn

from repflat.capture.discriminative import rows_summaries, supported
from repflat.capture.engine import capture_split
from repflat.config import CaptureConfig
from repflat.base.data import Data
from repflat.base.distributed import Dist
from repflat.capture.probes2d import save_grids
from repflat.progress import say
from repflat.rundir.features import FeatureWriter



def capture(model: nn.Module, data: Data, cfg: CaptureConfig, layers: tuple[str, ...],
            epoch: int, writer: FeatureWriter, *, device: torch.device, plane: str | None,
            uniform_seed: int, grids: bool = True, dist: Dist = Dist()) -> None:
    """Save `layers` for every configured split (and, for 2D inputs with `grids`, the
    boundary grids) at `epoch`, and the data's class names.

    Collective under torchrun: every rank calls it; rank 0 alone writes the grids.
    """
    for split in cfg.splits:
        capture_split(model, data.datasets[split], layers, writer, split=split, epoch=epoch,
                      device=device, batch_size=cfg.batch_size, reduce=cfg.reduce,
                      dtype=cfg.dtype, dist=dist)
        if cfg.discriminative and dist.main:
            save_discriminative(model, data.datasets[split], supported(model, layers, cfg.reduce),
                                data.n_classes, writer, split=split, epoch=epoch, device=device,
                                batch_size=cfg.batch_size, reduce=cfg.reduce)
    if dist.main:
        writer.set_class_names(data.class_names)
    if grids and data.input_shape == (2,) and data.arrays is not None and dist.main:
        save_grids(model, data, cfg, epoch, writer, device=device, plane=plane,
                   uniform_seed=uniform_seed)
    dist.barrier()


def save_discriminative(model: nn.Module, dataset, layers: tuple[str, ...], n_classes: int,
                        writer: FeatureWriter, *, split: str, epoch: int, device: torch.device,
                        batch_size: int, reduce: str) -> None:
    """Write the discriminative summary of each of `layers` for `split` at `epoch`
    (repflat.capture.discriminative); rank 0 alone, over the whole split."""
    if not layers:
        return
    summaries, counts, skipped = rows_summaries(model, dataset, layers, n_classes, device=device,
                                                batch_size=batch_size, reduce=reduce)
    for layer, (factor, trace) in summaries.items():
        writer.add_discriminative(split, epoch, layer, factor, trace, counts)
    for layer, why in skipped.items():  # once per run: the first capture says it
        if epoch == min(writer.epochs_seen(split)):
            say(f"discriminative summary of {layer!r} not saved ({why}): Corollary 1's "
                "measures are left out there", show=True)
