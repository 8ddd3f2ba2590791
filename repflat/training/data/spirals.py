"""K interleaved 2D spirals, one class per arm (the paper's Figure 1 toy data)."""
from __future__ import annotations

import numpy as np


def make_spirals(n_classes: int = 2, n_per_class: int = 500, *, noise: float = 0.04,
                 turns: float = 1.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on K spiral arms with Gaussian noise.

    Arm k is r(t) · (cos θ, sin θ) with θ = 2π·turns·t + 2πk/K and r(t) = t, for t
    drawn with density ∝ t on [0.1, 1] so points are spread evenly along the arm rather
    than crowded at the centre. Noise ~ N(0, noise²) is added to each coordinate.

    Returns `x` of shape (K · n_per_class, 2), float32, and integer labels `y`,
    class-major (all of class 0 first).
    """
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.1**2, 1.0, size=(n_classes, n_per_class)))
    theta = 2 * np.pi * turns * t + 2 * np.pi * np.arange(n_classes)[:, None] / n_classes
    x = np.stack([t * np.cos(theta), t * np.sin(theta)], axis=-1)
    x = x + rng.normal(0.0, noise, size=x.shape)
    y = np.repeat(np.arange(n_classes), n_per_class)
    return x.reshape(-1, 2).astype(np.float32), y.astype(np.int64)
