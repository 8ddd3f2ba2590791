"""The geometry of the probe grids (part of the format): boxes and y-major grids.

Training saves grids over the input plane and over a 2-D hidden layer
(repflat.capture.probes2d); the analysis side draws decision boundaries from them and
from any probability function over any 2-D data (repflat.analysis.report.plotting.
boundary). Both build their grids here, so they lie the same way:
`points.reshape(G, G, 2)[i, j] = (x_j, y_i)`.
"""
from __future__ import annotations

import numpy as np

PAD = 0.1
"""Share of the points' span added on each side of their bounding box."""


def padded_box(points: np.ndarray, pad: float = PAD) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of the bounding box of `points` (n, 2), widened by `pad` of its span on
    each side; a side of zero span is widened by `pad` instead."""
    points = np.asarray(points)
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lo - pad * span, hi + pad * span


def grid_points(lo, hi, resolution: int, dtype=np.float64) -> np.ndarray:
    """A resolution² × 2 grid over the box [lo, hi], y-major: row i·resolution + j is
    (x_j, y_i)."""
    xs, ys = (np.linspace(lo[d], hi[d], resolution, dtype=dtype) for d in range(2))
    xx, yy = np.meshgrid(xs, ys)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)
