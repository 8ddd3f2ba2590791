"""Probes of a model with 2-D inputs: what the boundary pictures are drawn from.

Computed here once, with torch, so the analysis side draws them without it; saved at
the final epoch of training:

- `input_grid`: a G×G grid over the input range (the training inputs' bounding box,
  padded by 10%); layers `input` (the points) and `probabilities` (softmax output).
- `uniform`: inputs drawn uniformly over the same box (the paper's black dots); layers
  `input` and the plane layer (their hidden coordinates).
- `plane_grid`: a G×G grid over the plane layer's range (training and uniform points,
  padded); layers <plane> (the points) and `probabilities`, obtained by substituting
  the grid for the plane layer's output.

Grid geometry (y-major) is the format's: `repflat.rundir.grids`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from repflat.base.layers import forward_features
from repflat.config import CaptureConfig
from repflat.rundir.features import FeatureWriter
from repflat.rundir.grids import grid_points, padded_box
from repflat.rundir.names import (GRID, INPUT, INPUT_GRID, PLANE_GRID, PROBABILITIES, SCATTER,
                                  TRAIN, UNIFORM)
from repflat.base.data import Data


def save_grids(model: nn.Module, data: Data, cfg: CaptureConfig, epoch: int,
               writer: FeatureWriter, *, device: torch.device, plane: str | None,
               uniform_seed: int) -> None:
    """Write the probe splits of a 2-D-input model at `epoch` (see the module docstring)."""
    G = cfg.grid_resolution
    train_x = data.arrays[TRAIN]
    lo, hi = padded_box(train_x)
    points = grid_points(lo, hi, G, np.float32)
    writer.add(INPUT_GRID, epoch, INPUT, points)
    writer.add(INPUT_GRID, epoch, PROBABILITIES,
               forward_features(model, points, (), device=device)[PROBABILITIES])
    writer.describe_split(INPUT_GRID, kind=GRID, space=INPUT, resolution=G)

    rng = np.random.default_rng(uniform_seed)  # the same black dots for every arm and epoch
    uniform = rng.uniform(lo, hi, size=(cfg.uniform_samples, 2)).astype(np.float32)
    seen = (INPUT,) + ((plane,) if plane else ())
    at_uniform = forward_features(model, uniform, seen, device=device)
    for name in seen:
        writer.add(UNIFORM, epoch, name, at_uniform[name])
    writer.describe_split(UNIFORM, kind=SCATTER, space=INPUT)
    if plane is None:
        return
    at_train = forward_features(model, train_x, (plane,), device=device)
    hidden = np.concatenate([at_train[plane], at_uniform[plane]])
    plo, phi = padded_box(hidden)
    ppoints = grid_points(plo, phi, G, np.float32)
    dummy = np.zeros((len(ppoints), *data.input_shape), dtype=np.float32)
    probs = forward_features(model, dummy, (), device=device, plane=(plane, ppoints))
    writer.add(PLANE_GRID, epoch, plane, ppoints)
    writer.add(PLANE_GRID, epoch, PROBABILITIES, probs[PROBABILITIES])
    writer.describe_split(PLANE_GRID, kind=GRID, space=plane, resolution=G)
