"""Decision boundaries of 2D classifiers: computed once, drawn as often as needed.

Like scikit-learn's DecisionBoundaryDisplay, `BoundaryDisplay` holds the class
probabilities of a classifier over a 2D grid and draws the predicted class, the
confidence or the entropy from them without computing anything again. The grid comes
from a run directory (`from_features`: any grid split training saved, `input_grid` or
`plane_grid`, so no model and no torch is needed) or from any probability function over
any 2D data set (`from_function`, e.g. a scikit-learn classifier's `predict_proba`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Patch

from repflat.analysis.inputs import as_array, as_features, as_labels
from repflat.analysis.report.plotting.style import class_colors, lighten, literal
from repflat.errors import choice, expected
from repflat.rundir.features import Features
from repflat.rundir.grids import PAD, grid_points, padded_box
from repflat.rundir.names import INPUT_GRID, PROBABILITIES

RESPONSES = ("confidence", "class", "entropy")
REGION_LIGHTNESS = 0.55
"""How far class regions are moved towards white: in the class's own full colour, its
points vanished into the region they were drawn on."""
ENTROPY_CMAP = sns.color_palette("mako_r", as_cmap=True)


@dataclass(frozen=True)
class BoundaryDisplay:
    """A classifier's class probabilities over a 2D grid, drawn as often as needed.

    Made by `from_features` (a grid split saved by training), `from_function` (any
    probability function over any 2D data set) or `from_grid` (points and probabilities
    at hand); `plot` draws the predicted class, the confidence or the entropy.

    Parameters
    ----------
    probabilities : ndarray, shape (G, G, n_classes)
        Class probabilities on the grid; [i, j] is at (x_j, y_i).
    extent : tuple of 4 floats
        (x_min, x_max, y_min, y_max) of the grid.
    space : str, default "input"
        The layer the grid lives in (`input` or a 2D hidden layer).
    """

    probabilities: np.ndarray
    """Class probabilities on the grid, shape (G, G, n_classes); [i, j] is at (x_j, y_i)."""
    extent: tuple[float, float, float, float]
    """(x_min, x_max, y_min, y_max) of the grid."""
    space: str = "input"
    """The layer the grid lives in (`input` or a 2D hidden layer)."""

    @classmethod
    def from_grid(cls, points: np.ndarray, probabilities: np.ndarray, resolution: int,
                  space: str = "input") -> BoundaryDisplay:
        """From y-major grid points (G², 2) and their probabilities (G², K).

        Parameters
        ----------
        points : ndarray, shape (G², 2)
            The grid's points, y-major (x varies fastest), as
            `repflat.rundir.grids.grid_points` makes them.
        probabilities : array-like, shape (G², n_classes)
            The class probabilities at each point.
        resolution : int
            G, the points per side.
        space : str, default "input"
            The layer the grid lives in.

        Returns
        -------
        BoundaryDisplay
            Probabilities reshaped to (G, G, n_classes), extent from the points' range.

        Raises
        ------
        repflat.errors.UserError
            If there are not G² points of 2 coordinates and as many probability rows.
        """
        G = resolution
        if points.shape != (G * G, 2) or len(probabilities) != G * G:
            raise expected("grid", f"{G * G} points of 2 coordinates and as many probability rows",
                           f"{points.shape} and {probabilities.shape}")
        extent = (float(points[:, 0].min()), float(points[:, 0].max()),
                  float(points[:, 1].min()), float(points[:, 1].max()))
        return cls(np.asarray(probabilities, dtype=np.float64).reshape(G, G, -1), extent, space)

    @classmethod
    def from_function(cls, predict_proba: Callable[[np.ndarray], np.ndarray], data: np.ndarray, *,
                      resolution: int = 200, pad: float = PAD, space: str = "input") -> BoundaryDisplay:
        """Evaluate `predict_proba` once over a grid covering `data` (n_samples, 2).

        The grid covers its bounding box padded by `pad` of its span on each side (as
        training's `input_grid`).

        `predict_proba` maps (n_points, 2) to class probabilities (n_points, n_classes).

        Parameters
        ----------
        predict_proba : callable
            (n_points, 2) float64 array to class probabilities (n_points, n_classes),
            e.g. a scikit-learn classifier's `predict_proba`; called once.
        data : array-like, shape (n_samples, 2)
            The points the grid must cover.
        resolution : int, default 200
            G, the grid's points per side (G² evaluations).
        pad : float, default 0.1 (`repflat.rundir.grids.PAD`)
            The margin on each side, as a fraction of the data's span (a side of zero
            span is widened by `pad` itself).
        space : str, default "input"
            The layer the grid lives in.

        Returns
        -------
        BoundaryDisplay
            Over the padded bounding box of `data`.

        Raises
        ------
        repflat.errors.UserError
            If `data` is empty or not of shape (n_samples, 2), `resolution` < 2, or
            `predict_proba` does not return one row of at least two class probabilities
            (≥ 0, summing to 1) per point.
        """
        data = np.asarray(as_features(data, "data"), dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
            raise expected("data", "points of shape (n_samples, 2)", data.shape)
        if resolution < 2:
            raise expected("resolution", "an integer >= 2", resolution)
        points = grid_points(*padded_box(data, pad), resolution)
        probs = np.asarray(as_array(predict_proba(points), "predict_proba"), dtype=np.float64)
        if probs.ndim != 2 or len(probs) != len(points) or probs.shape[1] < 2:
            raise expected("predict_proba", f"an array of shape ({len(points)}, n_classes)", probs.shape)
        if np.any(probs < -1e-9) or not np.allclose(probs.sum(1), 1, atol=1e-3):
            raise expected("predict_proba", "rows of class probabilities (>= 0, summing to 1)",
                           f"rows summing to {probs.sum(1).min():.3g}..{probs.sum(1).max():.3g}")
        return cls.from_grid(points, probs, resolution, space)

    @classmethod
    def from_features(cls, features: Features, epoch: int, split: str = INPUT_GRID) -> BoundaryDisplay:
        """From a grid split training saved: no model and no torch needed.

        Parameters
        ----------
        features : Features or MemoryFeatures
            A run's features (`repflat.Features(run_dir)`), with its grid splits.
        epoch : int
            The epoch of the saved grid (training saves grids at its last epoch).
        split : str, default "input_grid"
            The grid split: "input_grid" (the input plane) or "plane_grid" (a 2D hidden
            layer).

        Returns
        -------
        BoundaryDisplay
            The saved probabilities on the saved grid, `space` the layer it lives in.

        Raises
        ------
        repflat.errors.UserError
            If `split` is not a grid split of the run, or its points or probabilities
            are not saved at `epoch`.
        """
        info = features.splits.get(split)
        if not info or info.get("kind") != "grid":
            raise expected("split", "a grid split saved by training (input_grid, plane_grid)", split)
        space = info["space"]
        points = features.load(features.get(split, epoch, space))
        probs = features.load(features.get(split, epoch, PROBABILITIES))
        return cls.from_grid(points, probs, int(info["resolution"]), space)

    @property
    def n_classes(self) -> int:
        return self.probabilities.shape[-1]

    def response(self, kind: str = "confidence") -> np.ndarray:
        """(G, G) map: max probability, predicted class, or entropy in nats.

        Parameters
        ----------
        kind : {"confidence", "class", "entropy"}, default "confidence"
            max_k p_k, argmax_k p_k, or −Σ_k p_k log p_k (0·log 0 = 0).

        Returns
        -------
        ndarray, shape (G, G)
            Float for confidence and entropy, int for class.

        Raises
        ------
        repflat.errors.UserError
            For an unknown `kind`.
        """
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
        """RGB (G, G, 3) image of a response: the predicted class's colour, or the entropy.

        `class`: the predicted class's colour, lightened (`REGION_LIGHTNESS` of the way to
        white) so that points of that class, drawn in its full colour with dark edges
        (`scatter_classes`), stay visible on it; `confidence`: that colour faded further to
        white as confidence falls to chance (1/K); `entropy` runs from light (certain) to
        dark (log K nats, chance) through a colour-blind-safe sequential map.

        Parameters
        ----------
        kind : {"confidence", "class", "entropy"}, default "confidence"
            What the colours show; anything else is a UserError.

        Returns
        -------
        ndarray of float, shape (G, G, 3)
            RGB in [0, 1].
        """
        choice("kind", kind, RESPONSES)
        if kind == "entropy":
            e = self.response("entropy") / np.log(self.n_classes)
            return ENTROPY_CMAP(np.clip(e, 0, 1))[..., :3]
        colors = lighten(np.array(class_colors(self.n_classes)), REGION_LIGHTNESS)[self.response("class")]
        if kind == "class":
            return colors
        chance = 1.0 / self.n_classes
        strength = np.clip((self.response("confidence") - chance) / (1 - chance), 0, 1)[..., None]
        return 1 - strength * (1 - colors)

    def plot(self, ax=None, *, response: str = "confidence", alpha: float = 0.9,
             colorbar: bool = False):
        """Draw the `response` map on `ax`; `colorbar` adds the entropy scale (nats).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw; default: a new 4 × 4 inch figure's axes.
        response : {"confidence", "class", "entropy"}, default "confidence"
            The map drawn (see `image`: any other value draws the confidence map).
        alpha : float, default 0.9
            The image's opacity.
        colorbar : bool, default False
            Add a colour bar of the entropy in nats (only with `response="entropy"`).

        Returns
        -------
        matplotlib Axes
            `ax` (or the new axes), limited to the grid's extent.
        """
        ax = ax or plt.subplots(figsize=(4, 4))[1]
        ax.imshow(self.image(response), origin="lower", extent=self.extent, aspect="auto",
                  alpha=alpha, interpolation="bilinear")
        ax.set_xlim(self.extent[:2])
        ax.set_ylim(self.extent[2:])
        if colorbar and response == "entropy":
            scale = ScalarMappable(Normalize(0, np.log(self.n_classes)), ENTROPY_CMAP)
            ax.figure.colorbar(scale, ax=ax, label="entropy (nats)", fraction=0.046, pad=0.04)
        return ax


MAX_INDEXED_CLASSES = 4096


def class_legend(ax, names: list[str], **kw):
    """A legend of the class colours (index = label), e.g. on a predicted-class map."""
    colors = class_colors(len(names))
    handles = [Patch(facecolor=lighten(c, REGION_LIGHTNESS), edgecolor=c, label=literal(n))
               for c, n in zip(colors, names)]
    return ax.legend(handles=handles, **kw)


def scatter_classes(ax, points: np.ndarray, labels: np.ndarray, *, size: float = 6, **kw):
    """Points coloured by class with a thin dark edge, so they stand out on any map.

    Labels are class indices, coloured as the boundary maps colour the same index; a
    label set of sparse huge values (from a file) is coloured by rank instead of asking
    for a colour for every integer up to its largest."""
    points, labels = as_features(points, "points"), as_labels(labels)
    if len(labels) and labels.max() < MAX_INDEXED_CLASSES:
        colors = np.array(class_colors(int(labels.max()) + 1))[labels]
    else:
        ranks = np.unique(labels, return_inverse=True)[1]
        colors = np.array(class_colors(int(ranks.max()) + 1 if len(ranks) else 0))[ranks]
    ax.scatter(points[:, 0], points[:, 1], c=colors, s=size, edgecolors="0.15",
               linewidths=0.5, **kw)
    return ax
