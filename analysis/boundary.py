"""Decision boundaries from saved grids: computed once, drawn as often as needed.

Like scikit-learn's DecisionBoundaryDisplay, `BoundaryDisplay` holds the response of a
classifier over a 2D grid; unlike it, the response comes from the run directory
(`input_grid` or `plane_grid`, saved by training), so no model and no torch is needed.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from analysis.style import CLASS_PALETTE
from repflat.errors import expected
from repflat.store import Features

RESPONSES = ("confidence", "class", "entropy")


@dataclass(frozen=True)
class BoundaryDisplay:
    probabilities: np.ndarray
    """Class probabilities on the grid, shape (G, G, n_classes); [i, j] is at (x_j, y_i)."""
    extent: tuple[float, float, float, float]
    """(x_min, x_max, y_min, y_max) of the grid."""
    space: str = "input"
    """The layer the grid lives in (`input` or a 2D hidden layer)."""

    @classmethod
    def from_grid(cls, points: np.ndarray, probabilities: np.ndarray, resolution: int,
                  space: str = "input") -> BoundaryDisplay:
        """From y-major grid points (G², 2) and their probabilities (G², K)."""
        G = resolution
        if points.shape != (G * G, 2) or len(probabilities) != G * G:
            raise expected("grid", f"{G * G} points of 2 coordinates and as many probability rows",
                           f"{points.shape} and {probabilities.shape}")
        extent = (float(points[:, 0].min()), float(points[:, 0].max()),
                  float(points[:, 1].min()), float(points[:, 1].max()))
        return cls(np.asarray(probabilities, dtype=np.float64).reshape(G, G, -1), extent, space)

    @classmethod
    def from_features(cls, features: Features, epoch: int, split: str = "input_grid") -> BoundaryDisplay:
        info = features.splits.get(split)
        if not info or info.get("kind") != "grid":
            raise expected("split", "a grid split saved by training (input_grid, plane_grid)", split)
        space = info["space"]
        points = features.load(features.get(split, epoch, space))
        probs = features.load(features.get(split, epoch, "probabilities"))
        return cls.from_grid(points, probs, int(info["resolution"]), space)

    @property
    def n_classes(self) -> int:
        return self.probabilities.shape[-1]

    def response(self, kind: str = "confidence") -> np.ndarray:
        """(G, G) map: max probability, predicted class, or entropy in nats."""
        p = self.probabilities
        if kind == "confidence":
            return p.max(axis=-1)
        if kind == "class":
            return p.argmax(axis=-1)
        if kind == "entropy":
            with np.errstate(divide="ignore", invalid="ignore"):
                return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)
        raise expected("response", "one of " + ", ".join(RESPONSES), kind)

    def image(self, kind: str = "confidence") -> np.ndarray:
        """RGB (G, G, 3): the predicted class's colour, faded to white as confidence falls
        to chance (1/K); `class` shows full colour; `entropy` is grey, darker = less sure."""
        if kind == "entropy":
            e = self.response("entropy") / np.log(self.n_classes)
            return np.repeat((1 - 0.85 * e)[..., None], 3, axis=-1)
        colors = np.array(CLASS_PALETTE[: self.n_classes])[self.response("class")]
        if kind == "class":
            return colors
        chance = 1.0 / self.n_classes
        strength = np.clip((self.response("confidence") - chance) / (1 - chance), 0, 1)[..., None]
        return 1 - strength * (1 - colors)

    def plot(self, ax=None, *, response: str = "confidence", alpha: float = 0.9):
        ax = ax or plt.subplots(figsize=(4, 4))[1]
        ax.imshow(self.image(response), origin="lower", extent=self.extent, aspect="auto",
                  alpha=alpha, interpolation="bilinear")
        ax.set_xlim(self.extent[:2])
        ax.set_ylim(self.extent[2:])
        return ax


def scatter_classes(ax, points: np.ndarray, labels: np.ndarray, *, size: float = 6, **kw):
    """Points coloured by class with a thin dark edge, so they stand out on any map."""
    colors = np.array(CLASS_PALETTE[: int(labels.max()) + 1])[labels]
    ax.scatter(points[:, 0], points[:, 1], c=colors, s=size, edgecolors="0.15",
               linewidths=0.3, **kw)
    return ax
