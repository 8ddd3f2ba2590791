"""Figures of the paper's 2D toy experiments, drawn from saved grids and features.

`figure1`: the paper's Figure 1, six panels, from the runs of the spirals experiment.

(a, b) input-space decision boundary with confidence, ERM and manifold mixup, over
       the training points; (d, e) the 2D plane layer (the bottleneck): its confidence
       map, the training points' hidden states coloured by class, and as black dots the
       hidden states of inputs drawn uniformly over the input range; (c, f) one class's
       singular values at an early and a later hidden layer for every arm (log scale),
       mean over seeds with the min–max band. Panels a, b, d, e show the lowest seed of the
       first arm of each strategy, and their titles name that arm and seed.

`planes`: the plane layer of every arm side by side, as the paper's Figure 2 shows
for ERM and the regularizers (weight decay, noise, dropout, batch norm, mixup).

`boundaries`: every arm's input-space decision boundary three ways: predicted class,
confidence, and entropy.

`dataset_grid`: runs of several data sets (`repflat.analysis.report.datasets`), one row
per data set and one column per arm, each panel a saved input-space map.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from repflat.analysis.report.plotting.boundary import (RESPONSES, BoundaryDisplay, class_legend,
                                                       scatter_classes)
from repflat.analysis.report.plotting.plots import arm_strategies, hue_colors, plot_spectrum
from repflat.analysis.report.plotting.style import NAMED, literal, styled, with_seed
from repflat.analysis.runs import lowest_seed
from repflat.analysis.tidy import arm_order, class_names_in, final_epoch
from repflat.errors import expected
from repflat.rundir.run import RunInfo
from repflat.rundir.names import CLASS, INPUT_GRID, PLANE_GRID, STRATEGIES, UNIFORM

LABELS = {s.name: s.label for s in STRATEGIES}


def pick_run(runs: list[RunInfo], strategy: str | None = None, arm: str | None = None,
             split: str = INPUT_GRID) -> RunInfo | None:
    """The lowest-seed run of `strategy` (or `arm`) that saved the grid `split`."""
    found = [r for r in runs if split in r.features.splits
             and (strategy is None or r.strategy == strategy) and (arm is None or r.name == arm)]
    return lowest_seed(found)


def default_spectra_layers(spectra: pd.DataFrame, plane: str | None) -> tuple[str, ...]:
    """First and last analysed layer that is neither the input nor the 2D plane."""
    layers = [l for l in dict.fromkeys(spectra["layer"]) if l not in ("input", plane)]
    return (layers[0], layers[-1]) if len(layers) > 1 else tuple(layers)


def _boundary_panel(ax, run: RunInfo, title: str) -> None:
    fs = run.features
    epoch = fs.epochs(INPUT_GRID)[-1]
    BoundaryDisplay.from_features(fs, epoch, INPUT_GRID).plot(ax)
    if fs.select(split="train", epoch=epoch, layer="input"):
        scatter_classes(ax, fs.load(fs.get("train", epoch, "input")), fs.labels("train"))
    ax.set_title(literal(title))
    ax.set_xticks([]), ax.set_yticks([])


def _plane_panel(ax, run: RunInfo, title: str) -> None:
    fs = run.features
    epoch = fs.epochs(PLANE_GRID)[-1]
    display = BoundaryDisplay.from_features(fs, epoch, PLANE_GRID)
    display.plot(ax)
    plane = display.space
    if fs.select(split="train", epoch=epoch, layer=plane):
        scatter_classes(ax, fs.load(fs.get("train", epoch, plane)), fs.labels("train"))
    dots = fs.load(fs.get(UNIFORM, epoch, plane))
    ax.scatter(dots[:, 0], dots[:, 1], s=2, c="black", linewidths=0, alpha=0.7)
    ax.set_title(literal(title))
    ax.set_xlabel(literal(f"{plane} unit 1")), ax.set_ylabel(literal(f"{plane} unit 2"))


def _spectrum_panel(ax, spectra: pd.DataFrame, layer: str, cls: int, title: str) -> None:
    data = spectra[(spectra["layer"] == layer) & (spectra["group"] == CLASS)
                   & (spectra["class"] == int(cls))]
    data = final_epoch(data)
    # the paper's panels show indices 0..29; colours of all arms, so (c) and (f) agree; a
    # log axis, as the spectra figure's: on a linear one the largest σ₁ flattened the rest
    plot_spectrum(data, ax=ax, max_index=30, log=True,
                  palette=hue_colors(spectra["arm"], strategies=arm_strategies(spectra)))
    ax.set_title(literal(title))


def panel_name(run: RunInfo) -> str:
    """A panel's name for the run it shows: its strategy's label (ERM, manifold mixup),
    then its arm (which carries the swept values) where that is not just the strategy's
    name, and its seed: `manifold mixup (manifold_mixup-alpha0.5, seed 0)`, `ERM (seed 0)`."""
    label = LABELS.get(run.strategy, run.strategy)
    if run.name in {run.strategy, label} or NAMED.get(run.name) == run.strategy:
        return with_seed(label, run.seed)
    seed = with_seed("", run.seed).strip(" ()")  # "seed 0", or nothing when unknown
    return f"{label} ({', '.join(p for p in (run.name, seed) if p)})"


@styled
def figure1(runs: list[RunInfo], spectra: pd.DataFrame, *, layers: tuple[str, ...] = (),
            cls: int = 0):
    """The six panels as one matplotlib Figure; None if the runs lack what it needs
    (an ERM and a manifold mixup run with saved grids, and a 2D plane layer)."""
    erm, mm = pick_run(runs, "none"), pick_run(runs, "manifold_mixup")
    if erm is None or mm is None or PLANE_GRID not in erm.features.splits:
        return None
    plane = erm.features.splits[PLANE_GRID]["space"]
    chosen = tuple(layers) or default_spectra_layers(spectra, plane)
    if not chosen:
        return None
    early, late = chosen[0], chosen[-1]
    name = class_names_in(spectra).get(int(cls), str(cls))
    # which run of its strategy each panel shows: in a sweep the first manifold mixup arm
    # (α = 0.5, say) stood unnamed for all of them
    first, second = panel_name(erm), panel_name(mm)
    fig, ax = plt.subplots(2, 3, figsize=(14, 8.6))
    _boundary_panel(ax[0, 0], erm, f"(a) {first}: input space")
    _boundary_panel(ax[0, 1], mm, f"(b) {second}: input space")
    _spectrum_panel(ax[0, 2], spectra, early, cls, f"(c) class {name} spectrum at {early}")
    _plane_panel(ax[1, 0], erm, f"(d) {first}: {plane}")
    _plane_panel(ax[1, 1], mm, f"(e) {second}: {plane}")
    _spectrum_panel(ax[1, 2], spectra, late, cls, f"(f) class {name} spectrum at {late}")
    fig.tight_layout()
    return fig


@styled
def planes(runs: list[RunInfo]):
    """One plane panel per arm (lowest seed), in the fixed arm order; None without grids."""
    arms = arm_order(r.name for r in runs if PLANE_GRID in r.features.splits)
    if not arms:
        return None
    cols = min(len(arms), 4)
    rows = -(-len(arms) // cols)
    fig, ax = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    for a, arm in zip(ax.flat, arms):
        run = pick_run(runs, arm=arm, split=PLANE_GRID)
        _plane_panel(a, run, with_seed(arm, run.seed))
    for a in ax.flat[len(arms):]:
        a.set_visible(False)
    fig.tight_layout()
    return fig


RESPONSE_TITLES = {"class": "predicted class", "confidence": "confidence", "entropy": "entropy"}


@styled
def boundaries(runs: list[RunInfo], responses: tuple[str, ...] = ("class", "confidence", "entropy"),
               split: str = INPUT_GRID):
    """Rows: arms (lowest seed, fixed order); columns: `responses` of the grid `split`,
    each display computed once and drawn in every column. None without saved grids."""
    for r in responses:
        if r not in RESPONSES:
            raise expected("response", "one of " + ", ".join(RESPONSES), r)
    arms = arm_order(r.name for r in runs if split in r.features.splits)
    if not arms:
        return None
    fig, ax = plt.subplots(len(arms), len(responses), squeeze=False,
                           figsize=(3.6 * len(responses) + 0.6, 3.3 * len(arms)))
    for i, arm in enumerate(arms):
        run = pick_run(runs, arm=arm, split=split)
        fs = run.features
        epoch = fs.epochs(split)[-1]
        display = BoundaryDisplay.from_features(fs, epoch, split)
        train = fs.select(split="train", epoch=epoch, layer=display.space)
        for j, response in enumerate(responses):
            a = ax[i, j]
            display.plot(a, response=response, colorbar=response == "entropy")
            if train and response != "entropy":
                scatter_classes(a, fs.load(train[0]), fs.labels("train"), size=3)
            a.set_xticks([]), a.set_yticks([])
            if i == 0:
                a.set_title(literal(RESPONSE_TITLES.get(response, response)))
                if response == "class" and display.n_classes <= 10:  # beyond, a legend hides the map
                    class_legend(a, [fs.class_name(k) for k in range(display.n_classes)],
                                 loc="upper right", fontsize="x-small", framealpha=0.8,
                                 frameon=True)
            if j == 0:
                a.set_ylabel(literal(with_seed(arm, run.seed)))
    fig.tight_layout()
    return fig


@styled
def dataset_grid(runs: list[RunInfo], where: pd.DataFrame, metrics: pd.DataFrame | None = None,
                 *, response: str = "confidence"):
    """Rows: data sets; columns: arms (fixed order); each panel the lowest seed's saved
    input-space map (`response`) with its training points, titled with the cell's test
    NLL and ECE (mean over seeds). None without two data sets with saved grids."""
    if where.empty:
        return None
    by_run = {r.run_id: r for r in runs if INPUT_GRID in r.features.splits}
    where = where[where["run"].isin(by_run)]
    datasets = list(dict.fromkeys(where["dataset"]))
    columns = arm_order(where["cell"])
    if len(datasets) < 2:
        return None
    fig, ax = plt.subplots(len(datasets), len(columns), squeeze=False,
                           figsize=(2.6 * len(columns) + 0.4, 2.5 * len(datasets)))
    for i, dataset in enumerate(datasets):
        for j, cell in enumerate(columns):
            a = ax[i, j]
            a.set_xticks([]), a.set_yticks([])
            chosen = where[(where["dataset"] == dataset) & (where["cell"] == cell)]["run"]
            run = lowest_seed(by_run[r] for r in chosen)
            if i == 0:
                a.set_title(literal(cell), fontsize=10)
            if j == 0:
                a.set_ylabel(literal(dataset), fontsize=10)
            if run is None:
                a.set_frame_on(False)
                continue
            fs = run.features
            epoch = fs.epochs(INPUT_GRID)[-1]
            BoundaryDisplay.from_features(fs, epoch, INPUT_GRID).plot(a, response=response)
            if fs.select(split="train", epoch=epoch, layer="input"):
                scatter_classes(a, fs.load(fs.get("train", epoch, "input")), fs.labels("train"), size=2)
            note = _cell_note(metrics, dataset, cell)
            if note:
                a.text(0.02, 0.02, note, transform=a.transAxes, fontsize=6.5, va="bottom",
                       bbox={"facecolor": "white", "alpha": 0.75, "pad": 1.5, "linewidth": 0})
    fig.tight_layout()
    return fig


def _cell_note(metrics: pd.DataFrame | None, dataset: str, cell: str) -> str:
    if metrics is None or metrics.empty:
        return ""
    c = metrics[(metrics["dataset"] == dataset) & (metrics["cell"] == cell)]
    parts = [f"{title} {c[col].mean():.3f}" for col, title in (("test_nll", "NLL"), ("test_ece", "ECE"))
             if col in c.columns and c[col].notna().any()]
    return "  ".join(parts)
