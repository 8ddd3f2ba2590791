"""What a training run saves after a chosen epoch.

Features of the configured layers for each split go through the streaming capture
engine (`repflat.capture.engine`), the same path `repflat extract` uses. For 2D inputs
the boundary pictures' data goes too, computed here once so analysis can draw them
without torch:

They are saved at the final epoch only (the figures draw the trained model):

- `input_grid`: a G×G grid over the input range (the training inputs' bounding box,
  padded by 10%); layers `input` (the points) and `probabilities` (softmax output).
- `uniform`: inputs drawn uniformly over the same box (the paper's black dots); layers
  `input` and the plane layer (their hidden coordinates).
- `plane_grid`: a G×G grid over the plane layer's range (training and uniform points,
  padded); layers <plane> (the points) and `probabilities`, obtained by substituting
  the grid for the plane layer's output.

Grid rows are ordered y-major: `points.reshape(G, G, 2)[i, j] = (x_j, y_i)`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from repflat.capture.engine import capture_split
from repflat.config import CaptureConfig
from repflat.training.data import Data
from repflat.training.distributed import Dist
from repflat.capture.hooks import INPUT, recording, replacing
from repflat.rundir.features import FeatureWriter

PROBABILITIES = "probabilities"


@torch.no_grad()
def forward_features(model: nn.Module, x: np.ndarray, layers: tuple[str, ...], *,
                     device: torch.device, batch_size: int = 8192,
                     plane: tuple[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Features of `layers` (and `probabilities`) for in-memory inputs `x`, in eval mode.

    `plane=(layer, points)` substitutes `points` for that layer's output, so the
    network downstream of it is evaluated on arbitrary hidden coordinates.
    """
    was_training = model.training
    model.eval()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*layers, PROBABILITIES)}
    try:
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start:start + batch_size]).to(device)
            with recording(model, layers) as rec:
                if plane is None:
                    logits = model(xb)
                else:
                    hb = torch.as_tensor(plane[1][start:start + batch_size]).to(device)
                    with replacing(model, plane[0], lambda h, hb=hb: hb):
                        logits = model(xb)
            rec[PROBABILITIES] = torch.softmax(logits.float(), dim=1)
            for name in parts:
                parts[name].append(rec[name].flatten(1).float().cpu().numpy())
    finally:
        model.train(was_training)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def grid(lo: np.ndarray, hi: np.ndarray, resolution: int) -> np.ndarray:
    """A resolution² × 2 grid over the box [lo, hi], y-major."""
    xs, ys = (np.linspace(lo[d], hi[d], resolution, dtype=np.float32) for d in range(2))
    xx, yy = np.meshgrid(xs, ys)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def padded_box(points: np.ndarray, pad: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lo - pad * span, hi + pad * span


def capture(model: nn.Module, data: Data, cfg: CaptureConfig, layers: tuple[str, ...],
            epoch: int, writer: FeatureWriter, *, device: torch.device, plane: str | None,
            uniform_seed: int, grids: bool = True, dist: Dist = Dist()) -> None:
    """Save `layers` for every configured split (and, for 2D inputs with `grids`, the
    boundary grids) at `epoch`.

    Collective under torchrun: every rank calls it; rank 0 alone writes the grids.
    """
    for split in cfg.splits:
        capture_split(model, data.datasets[split], layers, writer, split=split, epoch=epoch,
                      device=device, batch_size=cfg.batch_size, reduce=cfg.reduce,
                      dtype=cfg.dtype, dist=dist)
    if grids and data.input_shape == (2,) and data.arrays is not None and dist.main:
        save_grids(model, data, cfg, epoch, writer, device=device, plane=plane,
                   uniform_seed=uniform_seed)
    dist.barrier()


def save_grids(model: nn.Module, data: Data, cfg: CaptureConfig, epoch: int,
               writer: FeatureWriter, *, device: torch.device, plane: str | None,
               uniform_seed: int) -> None:
    G = cfg.grid_resolution
    train_x = data.arrays["train"]
    lo, hi = padded_box(train_x)
    points = grid(lo, hi, G)
    writer.add("input_grid", epoch, INPUT, points)
    writer.add("input_grid", epoch, PROBABILITIES,
               forward_features(model, points, (), device=device)[PROBABILITIES])
    writer.describe_split("input_grid", kind="grid", space=INPUT, resolution=G)

    rng = np.random.default_rng(uniform_seed)  # the same black dots for every arm and epoch
    uniform = rng.uniform(lo, hi, size=(cfg.uniform_samples, 2)).astype(np.float32)
    seen = (INPUT,) + ((plane,) if plane else ())
    at_uniform = forward_features(model, uniform, seen, device=device)
    for name in seen:
        writer.add("uniform", epoch, name, at_uniform[name])
    writer.describe_split("uniform", kind="uniform", space=INPUT)
    if plane is None:
        return
    at_train = forward_features(model, train_x, (plane,), device=device)
    hidden = np.concatenate([at_train[plane], at_uniform[plane]])
    plo, phi = padded_box(hidden)
    ppoints = grid(plo, phi, G)
    dummy = np.zeros((len(ppoints), *data.input_shape), dtype=np.float32)
    probs = forward_features(model, dummy, (), device=device, plane=(plane, ppoints))
    writer.add("plane_grid", epoch, plane, ppoints)
    writer.add("plane_grid", epoch, PROBABILITIES, probs[PROBABILITIES])
    writer.describe_split("plane_grid", kind="grid", space=plane, resolution=G)
